// Injected into the CommonJS bundles by scripts/bundle.mjs: a CommonJS script's stand-in for import.meta.url.
export const importMetaUrl = require('node:url').pathToFileURL(__filename).href;
