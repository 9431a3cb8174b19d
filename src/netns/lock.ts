// One lock per state dir serialises what must not interleave between concurrent `tsrun run`s:
// choosing an address or host port and recording it, creating a network's bridge and rules.
export { withLock } from '../sys/lock.js';
