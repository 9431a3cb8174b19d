// Choosing one image from a multi-platform index, as containerd's platforms.Only does:
// os and architecture must match; for arm the variant matters (v8 and v7 are different
// instruction sets), preferring the exact variant and accepting older ones the CPU can run.
import { TsrunError } from '../errors.js';
import type { Descriptor, Platform } from '../oci/types.js';

const ARCH: Record<string, Platform> = {
  x64: { os: 'linux', architecture: 'amd64' },
  arm64: { os: 'linux', architecture: 'arm64', variant: 'v8' },
  arm: { os: 'linux', architecture: 'arm', variant: 'v7' },
  ia32: { os: 'linux', architecture: '386' },
  ppc64: { os: 'linux', architecture: 'ppc64le' },
  s390x: { os: 'linux', architecture: 's390x' },
  riscv64: { os: 'linux', architecture: 'riscv64' },
};

/** The platform of this machine in OCI terms (Node's x64 is OCI's amd64). */
export function hostPlatform(arch: string = process.arch): Platform {
  return { ...(ARCH[arch] ?? { os: 'linux', architecture: arch }) };
}

/** Docker's normalization: aarch64 → arm64, x86_64 → amd64, arm64 with no variant is v8. */
export function normalizePlatform(p: Platform): Platform {
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase();
  if (architecture === 'x86_64' || architecture === 'x86-64') architecture = 'amd64';
  if (architecture === 'aarch64') architecture = 'arm64';
  if (architecture === 'armhf') (architecture = 'arm'), (variant ??= 'v7');
  if (architecture === 'armel') (architecture = 'arm'), (variant ??= 'v6');
  if (architecture === 'arm64' && (variant === undefined || variant === '8')) variant = 'v8';
  if (architecture === 'arm' && variant === undefined) variant = 'v7';
  if (architecture === 'arm' && variant && /^\d+$/.test(variant)) variant = `v${variant}`;
  if (architecture === 'amd64' && variant === 'v1') variant = undefined;
  return { os: p.os.toLowerCase(), architecture, ...(variant && { variant }) };
}

/** `--platform os/arch[/variant]`; `arch` alone means linux/arch. */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().split('/');
  if (parts.some((p) => p === '') || parts.length > 3) {
    throw new TsrunError('EINVAL_FLAG', `invalid argument "${text}" for "--platform" flag: expected os/arch[/variant], e.g. linux/arm64`);
  }
  const [a, b, c] = parts as [string, string?, string?];
  const p = b === undefined ? { os: 'linux', architecture: a } : { os: a, architecture: b, ...(c && { variant: c }) };
  return normalizePlatform(p);
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** Variants the wanted one can run, best first (an armv7 CPU runs v6 and v5 code). */
function acceptableVariants(want: Platform): Array<string | undefined> {
  if (want.architecture === 'arm') {
    const order = ['v8', 'v7', 'v6', 'v5'];
    return order.slice(order.indexOf(want.variant ?? 'v7'));
  }
  return [want.variant];
}

export function platformMatches(candidate: Platform, want: Platform): boolean {
  const c = normalizePlatform(candidate);
  const w = normalizePlatform(want);
  return c.os === w.os && c.architecture === w.architecture && acceptableVariants(w).includes(c.variant);
}

/** The best manifest for `want` in an index, or an error listing what the index has. */
export function selectManifest(manifests: Descriptor[], want: Platform, what: string): Descriptor {
  const w = normalizePlatform(want);
  const order = acceptableVariants(w);
  let best: Descriptor | undefined;
  let bestRank = Infinity;
  for (const d of manifests) {
    if (!d.platform) continue;
    // BuildKit attaches provenance/SBOM manifests as platform unknown/unknown.
    if (d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest') continue;
    const c = normalizePlatform(d.platform);
    if (c.os !== w.os || c.architecture !== w.architecture) continue;
    const rank = order.indexOf(c.variant);
    if (rank >= 0 && rank < bestRank) (best = d), (bestRank = rank);
  }
  if (best) return best;
  const available = manifests
    .filter((d) => d.platform && d.platform.os !== 'unknown')
    .map((d) => formatPlatform(normalizePlatform(d.platform!)));
  throw new TsrunError(
    'ENOIMAGE',
    `${what}: no matching manifest for ${formatPlatform(w)} in the manifest list entries` +
      (available.length ? ` (available: ${available.join(', ')}; choose one with --platform)` : ''),
  );
}
