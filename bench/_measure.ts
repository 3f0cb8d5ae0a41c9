import { bundleLambda } from '../lib/constructs/lambda-bundle';
(async () => {
  const entry = process.argv[2]!;
  const r = await bundleLambda(entry, '/tmp/kc/m/' + entry.replace(/\W/g, '_'), { sourcemap: false });
  const out = Object.entries(r.metafile!.outputs).find(([k]) => k.endsWith('.js'))![1];
  const byPkg: Record<string, number> = {};
  for (const [f, v] of Object.entries(out.inputs)) {
    const m = f.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
    const k = m ? m[1]! : 'src:' + f;
    byPkg[k] = (byPkg[k] ?? 0) + v.bytesInOutput;
  }
  console.log(entry, 'total', out.bytes);
  for (const [k, v] of Object.entries(byPkg).sort((a, b) => b[1] - a[1]).slice(0, +(process.argv[3] ?? 25))) console.log(String(v).padStart(9), k);
})();
