#!/usr/bin/env python
"""The markdown tables of a benchmark run: from the record `bench.py` (or a section script) writes as JSON.

    python bench/report.py saved.json [--md out.md]     # the same as: python bench/bench.py --render saved.json
"""
from __future__ import annotations
import argparse, json, math
from pathlib import Path


def fmt(x, nd=2):
    if x is None or (isinstance(x, float) and math.isnan(x)): return '–'
    return f'{x:.{nd}f}' if isinstance(x, float) else str(x)

def header(R):
    M = R['meta']
    return (f"**{M['date']}** · `{M['command']}` · {M.get('cpu_model')} ({M.get('cores')} cores, flags "
            f"{', '.join(M.get('cpu_flags', []))}) · torch {M['torch']}, diffusers {M.get('diffusers')}, ddpm_nb "
            f"{M.get('ddpm_nb')} · torch threads {M['threads']} · load average at start "
            f"{', '.join(f'{x:.1f}' for x in M.get('loadavg', []))} · mode {'quick' if M['quick'] else 'full'} · "
            f"data: {M.get('data', 'not recorded')} · {M['wall_s']:.0f} s")

def peak_table(P):
    L = ['| matmul peak | n | best GFLOP/s | median GFLOP/s |\n|---|---|---|---|']
    for k, v in P.items(): L.append(f"| {k} | {v['n']} | {v['gflops_best']:.1f} | {v['gflops_median']:.1f} |")
    return L + ['']

def train_table(Tr, P, e2e):
    L = [f"**Training**, preset `{Tr['preset']}`, batch {Tr['batch']}, {Tr['rounds']} interleaved rounds of "
         f"{Tr['steps_per_round']} step(s); {Tr['flops_per_step'] / Tr['batch'] / 1e9:.2f} GFLOP per image (fwd+bwd). "
         "Ratios are medians of per-round ratios.\n",
         '| variant | img/s | × diffusers fp32 | × ddpm_nb fp32 | GFLOP/s | % of fp32 / bf16 matmul peak '
         '| warm-up s | peak mem MiB |\n|---|---|---|---|---|---|---|---|']
    pf, pb = P.get('float32', {}).get('gflops_best'), P.get('bfloat16', {}).get('gflops_best')
    for k, r in Tr['rows'].items():
        peak = f"{100 * r['gflops'] / pf:.0f}% / {100 * r['gflops'] / pb:.0f}%" if pf and pb else '–'
        L.append(f"| {k} | {r['img_per_s']:.1f} | {fmt(r['vs_diffusers'])} | {fmt(r['vs_baseline'])} | "
                 f"{r['gflops']:.1f} | {peak} | {r['warmup_s']:.1f} | {fmt(r.get('peak_mem_mb'), 0)} |")
    for e in e2e:
        L.append(f"| `train()` precision={e['precision']} compile={e['compile']} (EMA, clip, data)* | "
                 f"{e['img_per_s']:.1f} | – | – | – | – | – | – |")
    if e2e:
        L.append('\n\\* not interleaved with the rows above (a separate run right after them, median of its steps '
                 'after two warm-up steps): its img/s is not comparable on a busy machine, so no ratio is given.')
    return L + ['']

def sampling_table(S):
    L = [f"**Sampling**, batch {S['batch']}, the first {S['steps_measured']} steps of the T={S['T']} chain, "
         f"interleaved in blocks of {S['block']} steps (per-step cost does not depend on t; the 1000-step column "
         "extrapolates).\n",
         '| loop | s/step | s per 1000 steps (est.) | × bare forwards | speed-up vs diffusers loop | GFLOP/s |\n'
         '|---|---|---|---|---|---|']
    for k, r in S['rows'].items():
        L.append(f"| {k} | {r['s_per_step']:.4f} | {r['s_1000_steps_est']:.1f} | {r['vs_bare_forwards']:.3f} | "
                 f"{r['speedup_vs_diffusers_loop']:.2f} | {r['gflops']:.1f} |")
    L.append(f"\nOverhead of p_sample_loop over bare forwards: {100 * S['overhead_vs_bare']:+.1f}% (interleaved), "
             f"{100 * S['overhead_in_run']:+.1f}% (time outside the network within the same run); target ≤ 3%.\n")
    return L

def bpd_table(B):
    St = B['stratified']
    L = [f"**Likelihood**, calc_bpd_loop with T={B['T']}, batch {B['batch']}, {B['rounds']} interleaved rounds; "
         f"model: {B['model']}.\n",
         '| calc_bpd_loop img/s | forward bound img/s | fraction of bound (interleaved) | fraction (in-run) |\n'
         f"|---|---|---|---|\n| {B['calc_bpd_loop_img_per_s']:.3f} | {B['bound_img_per_s']:.3f} | "
         f"{B['fraction_of_bound']:.3f} | {B['fraction_of_bound_in_run']:.3f} |\n",
         f"Stratified estimator (`bpd_stratified`, T=1000), pilot of {St['pilot_images']} images × 2 draws, "
         f"for a 95% interval of ±{St['half_width_bpd']} bits/dim on a dataset's mean bpd "
         f"({St['seconds_per_forward_per_image'] * 1e3:.1f} ms per forward per image here):\n",
         '| k (middle terms) | mean bpd | sd within image | sd of one estimate | images | network forwards | est. s '
         '| forwards/image for ±0.02 on one image |\n|---|---|---|---|---|---|---|---|']
    for k, r in St['by_k'].items():
        L.append(f"| {k} | {r['mean_bpd']:.3f} | {math.sqrt(r['var_within_image']):.3f} | "
                 f"{math.sqrt(r['var_one_estimate']):.3f} | {r['images_needed']} | {r['forwards_needed']} | "
                 f"{r['seconds_est']:.0f} | {r['forwards_per_image_single_image_interval']} |")
    L.append(f"\nThe exact route, calc_bpd_loop (T=1000 forwards per image), needs about "
             f"{St['full_loop_images_needed']} images for the same interval (between-image sd "
             f"{math.sqrt(St['var_between_images']):.3f}): {St['full_loop_forwards_needed']} forwards.\n")
    return L

def gpu_table(G, meta):
    L = [f"**{'GPU' if meta.get('gpu') else 'GPU section'}** ({meta.get('gpu', meta['device'])}), `{G['preset']}` "
         f"preset, batch {G['batch']}:\n",
         f"| variant | img/s | × diffusers fp32 | × paper TPU v3-8 ({G['paper_tpu_v3_8_img_per_s']:,} img/s) "
         '| peak mem MiB | warm-up s |\n|---|---|---|---|---|---|']
    for k, r in G['rows'].items():
        L.append(f"| {k} | {r['img_per_s']:.0f} | {fmt(r.get('vs_diffusers_fp32'))} | {r['vs_paper']:.2f} | "
                 f"{r['peak_mem_mb']:.0f} | {fmt(r.get('warmup_s'), 1)} |")
    for k, v in G.items():
        if k.startswith('sample_') and 'x1000_s ' in k:
            L.append(f"\n{G['sample_n']} samples × 1000 steps ({k.split(' ', 1)[1]}): {v:.1f} s (paper, 256 samples "
                     f"on a TPU v3-8: {G['paper_tpu_v3_8_sample_256x1000_s']} s)")
    return L

def to_markdown(R):
    "The run's tables, one per section it holds, under a line naming the date, command, machine, versions and data."
    L = [header(R), '']
    P = R.get('matmul_peak', {})
    if P: L += peak_table(P)
    if R.get('train'): L += train_table(R['train'], P, R.get('train_e2e') or [])
    if R.get('sampling'): L += sampling_table(R['sampling'])
    if R.get('bpd'): L += bpd_table(R['bpd'])
    if R.get('gpu'): L += gpu_table(R['gpu'], R['meta'])
    return '\n'.join(L)

def render(path, md=None):
    "Print the tables of a saved run (and with `md` write them there); returns them."
    text = to_markdown(json.loads(Path(path).read_text()))
    print(text)
    if md: Path(md).write_text(text + '\n')
    return text

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('json', help="a run's JSON, as bench.py --json writes it")
    p.add_argument('--md', help='also write the tables to this file')
    a = p.parse_args(argv)
    return render(a.json, a.md)

if __name__ == '__main__': main()
