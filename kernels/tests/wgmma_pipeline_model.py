#!/usr/bin/env python3
# Model check of the mbarrier protocol of kernels/fused_glu_wgmma.cu (persistent:
# one producer thread, 8 consumer warps, kWgStages stages, parity waits, release
# of stage it-1 after wgmma.wait_group<1>, last stage after wait_group<0>).
# Random interleavings; asserts no deadlock, no stage overwritten while a
# consumer still reads it, and every consumer reads the k-tile it expects.
# Run: python3 kernels/tests/wgmma_pipeline_model.py
# Random-interleaving model of the persistent kernel's full/empty mbarrier protocol
# (parity waits, 8 consumer-warp releases, wait_group<1> lag, cross-tile prefetch).
import random
S=4
class Bar:
    def __init__(s,cnt): s.ph=0; s.arr=0; s.tx=0; s.cnt=cnt
    def check(s):
        if s.arr==s.cnt and s.tx==0: s.ph+=1; s.arr=0
    def arrive(s,tx=0): s.arr+=1; s.tx+=tx; s.check()
    def complete_tx(s): s.tx-=1; s.check()
    def passed(s,par): return (s.ph&1)!=par
def run(tiles, k_tiles, seed, lengths=None):
    # lengths: k-tiles of each unit this CTA walks (the tail split gives its
    # part units shorter K ranges); default: `tiles` whole tiles.
    lengths = lengths or [k_tiles]*tiles
    first=[]; last=[]
    for L in lengths:
        first += [True]+[False]*(L-1); last += [False]*(L-1)+[True]
    rnd=random.Random(seed); total=len(first)
    full=[Bar(1) for _ in range(S)]; empty=[Bar(8) for _ in range(S)]
    data=[None]*S; readers=[set() for _ in range(S)]
    pit=0; tma=[]
    cons=[{'it':0,'fl':[]} for _ in range(8)]
    for step in range(10**6):
        acts=[]
        if pit<total: acts.append('p')
        if tma: acts.append('t')
        acts+= [i for i,c in enumerate(cons) if c['it']<total]
        if not acts: return step
        a=rnd.choice(acts)
        if a=='p':
            s=pit%S; r=pit//S
            if r>0 and not empty[s].passed((r-1)&1): continue
            assert not readers[s], f"producer overwrites stage {s} (it={pit}) still read by {readers[s]}"
            full[s].arrive(tx=1); tma.append((s,pit)); data[s]=None; pit+=1
        elif a=='t':
            s,it=tma.pop(rnd.randrange(len(tma))); data[s]=it; full[s].complete_tx()
        else:
            c=cons[a]; it=c['it']; s=it%S
            if not full[s].passed((it//S)&1): continue
            assert data[s]==it, f"consumer {a} it={it}: stage {s} holds {data[s]}"
            readers[s].add(a); c['fl'].append(s)
            # wait_group<1>: everything but the newest group retired
            while len(c['fl'])>1:
                os_=c['fl'].pop(0); readers[os_].discard(a)
            if not first[it]: empty[(it-1)%S].arrive()
            c['it']+=1
            if last[it]:   # wait_group<0> + release the unit's last stage
                os_=c['fl'].pop(0); readers[os_].discard(a); empty[(c['it']-1)%S].arrive()
    raise Exception(f"deadlock tiles={tiles} k={k_tiles} seed={seed} pit={pit} cons={[c['it'] for c in cons]}")
n=0
for tiles in [1,2,3,5]:
    for k in [1,2,3,4,5,7,9,64]:
        for seed in range(30):
            run(tiles,k,seed); n+=1
# Tail split: units of unequal K (whole tiles, then parts of 1.. k-tiles).
for seed in range(300):
    rnd=random.Random(1000+seed)
    lengths=[rnd.choice([1,2,3,4,5,9,16]) for _ in range(rnd.randrange(1,7))]
    run(0,0,seed,lengths); n+=1
print("protocol model OK:", n, "random interleavings")
