// A compact end-of-test summary: the key numbers of a scenario and every threshold with its result,
// on stdout; the full summary as JSON where SUMMARY_JSON names a file.
const fmt = (v) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : String(v));

export function summarize(title, keys) {
  return function handleSummary(data) {
    const lines = [`== ${title}`];
    for (const k of keys) {
      const m = data.metrics[k];
      if (!m) {
        lines.push(`  ${k}: (no samples)`);
        continue;
      }
      const vals = Object.entries(m.values).map(([n, v]) => `${n}=${fmt(v)}`).join(' ');
      lines.push(`  ${k}: ${vals}`);
    }
    let failed = 0;
    for (const [name, m] of Object.entries(data.metrics)) {
      for (const [t, r] of Object.entries(m.thresholds || {})) {
        if (!r.ok) failed++;
        lines.push(`  threshold ${r.ok ? 'ok  ' : 'FAIL'} ${name} ${t}`);
      }
    }
    lines.push(`  ${failed === 0 ? 'all thresholds passed' : `${failed} threshold(s) failed`}`);
    const out = { stdout: lines.join('\n') + '\n' };
    if (__ENV.SUMMARY_JSON) out[__ENV.SUMMARY_JSON] = JSON.stringify(data, null, 2);
    return out;
  };
}
