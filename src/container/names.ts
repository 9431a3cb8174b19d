// Container IDs and names: 64 hex digits like docker's, and docker-style generated names.
import { randomBytes } from '../sys/random.js';
import { TsrunError } from '../errors.js';

export function newContainerId(): string {
  return randomBytes(32).toString('hex');
}

const ADJECTIVES = [
  'amazing', 'brave', 'busy', 'calm', 'clever', 'cool', 'eager', 'elastic', 'focused', 'gallant',
  'happy', 'hungry', 'jolly', 'keen', 'kind', 'lucid', 'modest', 'nifty', 'quirky', 'sharp',
  'stoic', 'tender', 'vibrant', 'wizardly', 'zealous',
];
const SCIENTISTS = [
  'babbage', 'bell', 'curie', 'darwin', 'dijkstra', 'einstein', 'euclid', 'feynman', 'hopper',
  'hypatia', 'kepler', 'knuth', 'lamport', 'lovelace', 'mccarthy', 'noether', 'pike', 'ritchie',
  'shannon', 'thompson', 'torvalds', 'turing', 'wozniak', 'yalow', 'zhukovsky',
];

export function generateName(): string {
  const [a, b, n] = randomBytes(3);
  return `${ADJECTIVES[a! % ADJECTIVES.length]}_${SCIENTISTS[b! % SCIENTISTS.length]}${n! % 100}`;
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function validateName(name: string): string {
  const n = name.startsWith('/') ? name.slice(1) : name;
  if (!NAME.test(n) || n.length > 128) {
    throw new TsrunError('EINVAL_FLAG', `invalid container name "${name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
  return n;
}
