#!/usr/bin/env python3
# Model check of the mbarrier protocol of kernels/fused_glu_wgmma.cu (persistent:
# one producer thread, 8 consumer warps, kWgStages stages, parity waits, release
# of stage it-1 after wgmma.wait_group<1>, last stage after wait_group<0>).
# Random interleavings; checks no deadlock, no stage overwritten while a
# consumer still reads it, and every consumer reads the k-tile it expects.
# Run: python3 kernels/tests/wgmma_pipeline_model.py
# Random-interleaving model of the persistent kernel's full/empty mbarrier protocol
# (parity waits, 8 consumer-warp releases, wait_group<1> lag, cross-tile prefetch).
import random
import sys
S=4
def fail(msg):
    # Not `assert`: the checks must hold under python3 -O too.
    print("FAIL:", msg)
    sys.exit(1)
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
            if readers[s]: fail(f"producer overwrites stage {s} (it={pit}) still read by {readers[s]}")
            full[s].arrive(tx=1); tma.append((s,pit)); data[s]=None; pit+=1
        elif a=='t':
            s,it=tma.pop(rnd.randrange(len(tma))); data[s]=it; full[s].complete_tx()
        else:
            c=cons[a]; it=c['it']; s=it%S
            if not full[s].passed((it//S)&1): continue
            if data[s]!=it: fail(f"consumer {a} it={it}: stage {s} holds {data[s]}")
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

# The cluster schedule (fused_glu_wgmma_cluster_*): two CTAs walk the same
# units. Each producer waits on its own empty barrier (16 arrivals: its 8
# consumer warps and the peer's 8), arrives on its full barrier expecting the
# whole stage (3 parts: its A, its B half, the peer's B half), loads its A
# into its own ring and its B half into both rings (multicast). Each consumer
# warp releases a stage on both CTAs' empty barriers. A part may land on a
# full barrier before that CTA's producer has armed it (the transaction count
# goes negative; the phase cannot complete without the producer's arrive).
# Checks: no deadlock, no part lands in a stage a consumer of that CTA
# still reads, and every consumer reads the three parts of the k-tile it
# expects.
def run_cluster(lengths, seed):
    first=[]; last=[]
    for L in lengths:
        first += [True]+[False]*(L-1); last += [False]*(L-1)+[True]
    rnd=random.Random(seed); total=len(first)
    full=[[Bar(1) for _ in range(S)] for _ in range(2)]
    empty=[[Bar(16) for _ in range(S)] for _ in range(2)]
    data=[[[None]*3 for _ in range(S)] for _ in range(2)]  # [cta][stage][part]
    readers=[[set() for _ in range(S)] for _ in range(2)]
    pit=[0,0]; tma=[]
    cons=[[{'it':0,'fl':[]} for _ in range(8)] for _ in range(2)]
    def release(s):
        for cta in range(2): empty[cta][s].arrive()
    for step in range(10**6):
        acts=[]
        for c in range(2):
            if pit[c]<total: acts.append(('p',c))
            acts += [('c',c,w) for w in range(8) if cons[c][w]['it']<total]
        if tma: acts.append(('t',))
        if not acts: return step
        a=rnd.choice(acts)
        if a[0]=='p':
            c=a[1]; s=pit[c]%S; r=pit[c]//S
            if r>0 and not empty[c][s].passed((r-1)&1): continue
            full[c][s].arrive(tx=3)
            tma.append((c,s,pit[c],0))            # A: own ring
            tma.append((c,s,pit[c],1+c))          # B half c: own ring ...
            tma.append((1-c,s,pit[c],1+c))        # ... and the peer's
            pit[c]+=1
        elif a[0]=='t':
            dst,s,it,part=tma.pop(rnd.randrange(len(tma)))
            if readers[dst][s]: fail(f"part {part} of it={it} lands in CTA {dst} stage {s} still read by {readers[dst][s]}")
            data[dst][s][part]=it; full[dst][s].complete_tx()
        else:
            _,c,w=a; st=cons[c][w]; it=st['it']; s=it%S
            if not full[c][s].passed((it//S)&1): continue
            if data[c][s]!=[it]*3: fail(f"CTA {c} warp {w} it={it}: stage {s} holds {data[c][s]}")
            readers[c][s].add(w); st['fl'].append(s)
            while len(st['fl'])>1:
                os_=st['fl'].pop(0); readers[c][os_].discard(w)
            if not first[it]: release((it-1)%S)
            st['it']+=1
            if last[it]:
                os_=st['fl'].pop(0); readers[c][os_].discard(w); release((st['it']-1)%S)
    raise Exception(f"cluster deadlock lengths={lengths} seed={seed} pit={pit}")
nc=0
for tiles in [1,2,3]:
    for k in [1,2,3,4,5,9]:
        for seed in range(20):
            run_cluster([k]*tiles, seed); nc+=1
print("cluster protocol model OK:", nc, "random interleavings")
