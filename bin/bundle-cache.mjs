// A command's TypeScript bundled by esbuild into one CommonJS module, cached under
// node_modules/.cache and rebuilt whenever one of its source files changes (size or mtime).
//
// Why: tsx costs about 60 ms of start-up per process (its loader thread and transform cache),
// which dominates `detect` on ordinary log files and in shell pipelines. A cached bundle starts
// like plain JavaScript. Only commands that never locate files through import.meta.url may be
// bundled (a bundle lives elsewhere); everything else keeps running through tsx.
//
// CommonJS, loaded with require(), and Node's built-ins taken with process.getBuiltinModule: an
// ES module that imports `node:fs` or `node:util` pays for an ES namespace of all their exports
// (measured: more than a tenth of `detect`'s start-up), a require() does not.
//
// Returns null (the caller falls back to tsx) when esbuild is not installed, node_modules is not
// writable, the build fails (tsx then reports the error properly), or
// CONNTRACK_RESPONDER_NO_BUNDLE=1 is set.
const { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } = process.getBuiltinModule('node:fs');
const module = process.getBuiltinModule('node:module');
const { join } = process.getBuiltinModule('node:path');

const FORMAT = 2;

/**
 * A short name for the checkout, computed here: loading node:crypto for it was about a seventh of
 * `detect`'s start-up. (FNV-1a, twice with different offsets; collisions only matter between checkouts that share one
 * node_modules, and even then the input check below refuses a bundle built from other files.)
 */
function rootKey(root) {
  let first = 0x811c9dc5;
  let second = 0x01000193;
  for (let index = 0; index < root.length; index++) {
    const code = root.charCodeAt(index);
    first = Math.imul(first ^ code, 0x01000193) >>> 0;
    second = Math.imul(second ^ code, 0x5bd1e995) >>> 0;
  }
  return first.toString(16).padStart(8, '0') + second.toString(16).padStart(8, '0');
}

function cacheDirectory(root) {
  const key = rootKey(root);
  return join(root, 'node_modules', '.cache', 'conntrack-responder', key);
}

function isFresh(root, metaPath) {
  let meta;
  try {
    meta = JSON.parse(readFileSync(metaPath, 'utf8'));
  } catch {
    return false;
  }
  if (meta.format !== FORMAT || meta.node !== process.version || !Array.isArray(meta.inputs)) return false;
  return meta.inputs.every(([path, mtimeMs, size]) => {
    try {
      const info = statSync(join(root, path));
      return info.mtimeMs === mtimeMs && info.size === size;
    } catch {
      return false;
    }
  });
}

async function build(root, entry, bundlePath, metaPath) {
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch {
    return false;
  }
  let result;
  try {
    result = await esbuild.build({
      absWorkingDir: root,
      entryPoints: [entry],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: `node${process.versions.node.split('.')[0]}`,
      packages: 'external',
      metafile: true,
      write: false,
      logLevel: 'silent',
    });
  } catch {
    return false;
  }
  // Inputs are stat'ed after the build: an edit during the build makes the next run rebuild.
  const inputs = Object.keys(result.metafile.inputs).map((path) => {
    const info = statSync(join(root, path));
    return [path, info.mtimeMs, info.size];
  });
  const suffix = `.${process.pid}.tmp`;
  writeFileSync(bundlePath + suffix, result.outputFiles[0].contents);
  writeFileSync(metaPath + suffix, JSON.stringify({ format: FORMAT, node: process.version, inputs }));
  // Renames are atomic: a concurrent run sees the old pair or the new one.
  renameSync(bundlePath + suffix, bundlePath);
  renameSync(metaPath + suffix, metaPath);
  return true;
}

/** Loads the cached bundle of `entry` (a path relative to `root`), building it when stale. */
export async function importBundled(root, entry, name) {
  if (process.env.CONNTRACK_RESPONDER_NO_BUNDLE === '1') return null;
  const directory = cacheDirectory(root);
  const bundlePath = join(directory, `${name}.cjs`);
  const metaPath = join(directory, `${name}.inputs.json`);
  try {
    if (!isFresh(root, metaPath)) {
      mkdirSync(directory, { recursive: true });
      if (!(await build(root, entry, bundlePath, metaPath))) return null;
    }
    // V8's code cache for the bundle: later runs skip most of its compilation.
    module.enableCompileCache?.(join(directory, 'v8'));
    return module.createRequire(bundlePath)(bundlePath);
  } catch {
    return null;
  }
}
