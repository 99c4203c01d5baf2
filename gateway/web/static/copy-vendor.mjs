// Copy the node_modules files vendor.json lists, and the licence file of every installed package
// (graphiql.min.js bundles most of them), to DEST/node_modules, keeping their paths. The Dockerfile's
// node stage uses it, so the image gets these files and nothing else of node_modules.
// Usage: node copy-vendor.mjs DEST   (beside the node_modules that `npm ci` installed)
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const dest = process.argv[2];
if (!dest) {
  console.error('usage: node copy-vendor.mjs DEST');
  process.exit(2);
}
const here = dirname(new URL(import.meta.url).pathname);
const modules = join(here, 'node_modules');
const manifest = JSON.parse(readFileSync(join(here, 'vendor.json'), 'utf8'));

function packages() {
  const found = [];
  for (const name of readdirSync(modules)) {
    if (name.startsWith('.')) continue;
    if (name.startsWith('@')) for (const sub of readdirSync(join(modules, name))) found.push(`${name}/${sub}`);
    else found.push(name);
  }
  return found;
}

const licences = packages().flatMap((pkg) =>
  existsSync(join(modules, pkg))
    ? readdirSync(join(modules, pkg)).filter((f) => /^licen[cs]e/i.test(f)).map((f) => `${pkg}/${f}`)
    : [],
);
for (const rel of [...Object.values(manifest.files), ...licences]) {
  const to = join(dest, 'node_modules', rel);
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(join(modules, rel), to);
}
console.log(`copied ${Object.keys(manifest.files).length} files and ${licences.length} licences to ${dest}`);
