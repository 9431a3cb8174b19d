// Image references, parsed as docker parses them (distribution/reference):
//   busybox                      → docker.io/library/busybox:latest
//   10.0.0.5:5000/team/app:v1    → registry 10.0.0.5:5000, repository team/app, tag v1
//   ghcr.io/o/r@sha256:<64 hex>  → pinned by digest
import { TsrunError } from '../errors.js';

export const DEFAULT_REGISTRY = 'docker.io';
/** Where docker.io's API really lives. */
export const DOCKER_HUB_API = 'registry-1.docker.io';

export interface Reference {
  /** host[:port], normalized (index.docker.io → docker.io). */
  registry: string;
  /** Path inside the registry (library/busybox). */
  repository: string;
  tag?: string;
  digest?: `sha256:${string}`;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const DOMAIN_PART = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const PORT = /^[0-9]+$/;

function bad(input: string, why: string): TsrunError {
  return new TsrunError('EINVAL_REF', `invalid reference format "${input}": ${why}`);
}

/** Parse a user-supplied reference; a missing tag and digest means `latest`. */
export function parseReference(input: string): Reference {
  if (input === '') throw bad(input, 'empty reference');
  if (input.length > 512) throw bad(input, 'longer than 512 characters');

  let rest = input;
  let digest: Reference['digest'];
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!DIGEST.test(d)) throw bad(input, `digest "${d}" is not sha256:<64 lower-case hex digits>`);
    digest = d as Reference['digest'];
    rest = rest.slice(0, at);
  }

  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(input, `tag "${tag}" must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
  }

  let registry = DEFAULT_REGISTRY;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    // docker's rule: the first component is a registry when it looks like a host.
    if (first.includes('.') || first.includes(':') || first === 'localhost' || /[A-Z]/.test(first)) {
      checkDomain(input, first);
      registry = first === 'index.docker.io' ? DEFAULT_REGISTRY : first;
      path = rest.slice(slash + 1);
    }
  }
  if (path === '') throw bad(input, 'repository name is empty');
  if (/[A-Z]/.test(path)) throw bad(input, 'repository name must be lowercase');
  for (const component of path.split('/')) {
    if (!COMPONENT.test(component)) {
      throw bad(input, `path component "${component}" must be lower-case letters, digits and separators (. _ __ -)`);
    }
  }
  if (registry === DEFAULT_REGISTRY && !path.includes('/')) path = `library/${path}`;
  if (registry.length + 1 + path.length > 255) throw bad(input, 'repository name longer than 255 characters');

  if (tag === undefined && digest === undefined) tag = 'latest';
  return { registry, repository: path, ...(tag !== undefined && { tag }), ...(digest && { digest }) };
}

function checkDomain(input: string, domain: string): void {
  let host = domain;
  const colon = domain.lastIndexOf(':');
  if (colon >= 0 && !domain.endsWith(']')) {
    const port = domain.slice(colon + 1);
    if (!PORT.test(port) || Number(port) > 65535) throw bad(input, `port "${port}" in "${domain}" is not a number 0-65535`);
    host = domain.slice(0, colon);
  }
  if (host.startsWith('[') && host.endsWith(']')) return; // IPv6 literal
  if (!host.split('.').every((p) => DOMAIN_PART.test(p))) throw bad(input, `registry host "${host}" is not a valid host name`);
}

/** registry/repository — the repository's full name (docker.io/library/busybox). */
export function repositoryName(ref: Reference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The canonical full string: docker.io/library/busybox:latest, or …@sha256:… */
export function formatReference(ref: Reference): string {
  let s = repositoryName(ref);
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** What docker shows in `images`: busybox for docker.io/library/busybox. */
export function familiarRepository(ref: Pick<Reference, 'registry' | 'repository'>): string {
  if (ref.registry !== DEFAULT_REGISTRY) return `${ref.registry}/${ref.repository}`;
  return ref.repository.startsWith('library/') ? ref.repository.slice('library/'.length) : ref.repository;
}

/** Normalize anything a user types into the store's key (docker.io/library/busybox:latest). */
export function normalizeName(input: string): string {
  return formatReference(parseReference(input));
}
