#!/usr/bin/env python3
"""The vocabulary-parallel loss on the GPT family (docs/benchmarks.md): for each model, the loss
layer's bytes per device per step gathered and vocabulary-parallel, then the plan for the C
trainer and for --target cuda (both implement vocab-parallel, so the two plans are the same; the
CUDA trainer did not before issue 15's CUDA follow-up), each as mesh, loss strategy, busiest
device's bytes per step and predicted step time.

    python3 bench/vocab_loss.py build/mpcc examples/gpt.mp bench/gpt/*.mp
"""
import json, subprocess, sys
mpcc = sys.argv[1]
def find(o):
    if isinstance(o, dict):
        if o.get('op') == 'cross_entropy': return o
        for v in o.values():
            x = find(v)
            if x: return x
    if isinstance(o, list):
        for v in o:
            x = find(v)
            if x: return x
def tot(o, key):
    if isinstance(o, dict):
        if key in o and not isinstance(o[key], (dict, list)): return o[key]
        for k in ('plan', 'totals', 'chosen'):
            if k in o:
                x = tot(o[k], key)
                if x is not None: return x
for f in sys.argv[2:]:
    row = [f.split('/')[-1]]
    for tgt in ('c', 'cuda'):
        r = subprocess.run([mpcc, f, '--target', tgt, '--report-json', '/tmp/vm.json', '--emit', 'plan'],
                           capture_output=True, text=True, timeout=300)
        if r.returncode: row.append('error'); continue
        j = json.load(open('/tmp/vm.json'))
        n = find(j)
        m = j['mesh']
        if tgt == 'c':
            alts = {a['strategy']: a.get('comm_bytes') for a in n['alternatives']}
            row.append('loss: gathered %s B, vocab %s B' % (alts.get('data'), alts.get('vocab-parallel')))
        row.append('%dx%dx%d %s %.3g GB/step %.4g s' % (m['S'], m['d'], m['t'], n['strategy'], j['totals']['comm_bytes'] / 1e9, j['totals']['step_time']))
    print(row, flush=True)
