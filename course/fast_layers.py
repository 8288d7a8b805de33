"""Fast convolution and max pooling in pure numpy (given code, not a task).

Same signatures, results and caches' meaning as the naive layers of ``course.layers``
(to 1e-10 in float64, with the same tie rule in pooling), for every stride, padding and
pool geometry, overlapping pools included. float32 inputs give float32 results. There is
no compiled extension: the speed comes from stride tricks, reshapes and BLAS.

How they work, and why. Every choice below was measured on the 2-core development VM,
interleaved, against the alternative named beside it; ``make bench`` prints the numbers
for this code. The machine was shared and busy (load average 5 to 10 on 2 cores), so the
choices were made on single-threaded CPU time (BLAS and WORKERS at 1), the one figure
that load barely moves, and checked with two threads.

* **Convolution forward** is a batched matrix product. ``as_strided`` gives a view of the
  padded input shaped ``(n, C, HH, WW, H_out, W_out)`` without copying; copying it into a
  buffer shaped ``(n, C*HH*WW, H_out*W_out)`` makes the windows' "im2col" matrix of a
  block of examples, and ``w_flat @ cols`` writes ``(n, F, H_out*W_out)``, already in NCHW
  order. The bias rides in the GEMM: the im2col buffer has one more row, all ones, and
  the weights one more column, the bias (a pass over the output fewer: one thread's
  forward took 0.82x to 0.97x the time at (a)-(c)). Tried and dropped: a row-flattened
  "extended" im2col (contiguous copies, but 12% to 19% more GEMM work: 1.2x slower at
  size (b); at (c), round 5, one thread: copy 1.1 instead of 2.6 ms, but GEMM +0.7 ms
  and cutting the junk columns off the output +0.8 ms, no faster), one GEMM per block
  on an im2col laid out (C*HH*WW, n*H_out*W_out) (no faster), and the transposed
  product ``im2col.T @ w.T`` (0.9x to 1.2x, no clear gain).
  At stride 1 (round 5) the im2col matrix is not made: ``_RowShifts`` copies, for each
  channel c and filter column q, the padded image's rows shifted left by q and cut to
  W_out columns, S[c*WW + q, r*W_out + j] = x_pad[c, r, j + q]. The im2col rows of
  filter row p are then the runs ``S[:, p*W_out : p*W_out + H_out*W_out]``, all at one
  row stride: a strided view OpenBLAS takes as it is. The output is the sum over p of
  ``w[:, :, p, :] @ view(p)``: HH products that together do the im2col product's work,
  HH - 1 adds of the output block, and a copy HH times smaller with HH times fewer
  inner loops (numpy's overhead per inner loop of W_out values is what bounds the
  im2col copy). One thread, (c): forward 8.3 instead of 9.3 ms (copy 0.7 instead of
  1.9); (b), where each product has only C*WW = 21 rows of depth: 11.9 instead of 12.2.
  Blocks are sized by S and the partial products (several examples per numpy call: with
  one example per block at (b), 13 short numpy calls each, two threads took 1.5x the
  forward time of im2col). Tried and dropped: grouping g filter rows per product when
  C*WW is small (S's rows (p', c, q), ceil(HH/g) deeper products; g = HH is im2col):
  at (b), one thread, forward 12.4 to 13.4 ms for g = 2 to 7 against 11.1 for g = 1,
  backward 28.7 to 29.4 against 26.6 (two threads: 7.7 to 8.1 against 7.2, 19.3 to 20.0
  against 17.7): the copy, not the products' depth, is what costs. And the adjoint of
  the row shifts for dx at (b) (HH products of w.T into S's shape, HH - 1 overlapping
  adds, then WW adds folding the columns back): 15.9 ms against the flat fold's 13.3,
  one thread (the adds took 4.2 ms). The forward's own HH - 1 adds are what the row
  shifts still pay: at (b), one thread, 2.3 of 7.8 ms per 100 examples (products 5.5);
  the transposed products (``view(p).T @ w_p.T``, then one transposing copy) took 9.8.
  numpy's matmul cannot accumulate (no beta), and calling BLAS directly (ctypes) ties
  the kit to one BLAS build: not tried. Blocks of 0.25 to 4 MiB at (c), two threads:
  1 MiB still the fastest (forward 4.9 ms against 5.3 to 5.5, backward 10.5 against
  10.6 to 11.3). Each block is also padded in its thread (``_Padded``: a zero-margined
  buffer per thread, the margins never written) instead of padding the whole input
  first, a serial pass before the threads start (0.5 ms at (c), once per forward and
  twice per backward). Round 5 altogether, against the code before it in one process
  with PyTorch, interleaved (medians, float32 unless named, two threads, load 0.6 to
  1.9 on 2 cores, a second helper timing too): fwd + bwd 0.92x to 0.93x the time at
  (c) (over PyTorch's: 1.75 to 1.83, was 1.89 to 1.98), 0.93x to 1.00x at (b) (0.99 to
  1.06, was 0.99 to 1.08), 0.96x to 0.98x at (a), stride 2, where only the padding
  changed (1.33 to 1.47, was 1.39 to 1.51), and 0.93x to 0.95x at (a) float64 (1.16 to
  1.23, was 1.25 to 1.31).
  Round 6: ``_RowShifts.fill`` copies x straight into S, one copy per filter column q
  (the part of x that lands inside S's rows; the padding's zeros are written once, when
  S is made), instead of padding each block into a buffer and then copying rows of
  W_out values per (c, q, padded row): half the numpy inner loops. One thread, (c), the
  fill of a forward took 0.55 instead of 0.97 ms ((b): 0.44 instead of 0.50), forward
  7.2 instead of 7.7 ms, dw 7.9 instead of 8.4, dx 7.1 instead of 7.6 (the im2col path,
  strides above 1, still pads through ``_Padded``). Filters wider than 3 columns fill
  S in two numpy calls instead of WW: x's rows widened by the column padding into a
  thread buffer, then all WW shifts in one copy (one more pass over x, WW - 2 calls
  fewer): (b), 7x7, fwd + bwd 0.95x to 0.98x the time of the per-shift copies, two
  threads; (c), 3x3, 1.03x (one thread, the fill alone 0.86 against 0.55 ms), so 3x3
  filters keep the per-shift copies. What still costs at (c), two threads, quiet
  machine (forward with parts switched off): GEMMs 3.66 of 4.42 ms, the fill 0.58, the
  adds 0.22. The fill alone, blocks of 3 examples, took 0.59 ms on one thread and 0.59
  on two, x in the cache or not: numpy calls of about 10 us, most likely bound by the
  GIL handoffs between them, not by the copying (blocks of 25 examples scale 1.6x on
  two threads, but lose the cache: 1.1 ms on one). Tried and
  dropped: a flat fill when W_out == W (each shift one contiguous copy of the flattened
  image, then the columns it wrongly fills zeroed): 0.44 instead of 0.55 ms at (c) alone
  but 0.52 instead of 0.48 at (b), and no faster in the layer on two threads; blocks of
  near-equal sizes, as many as a multiple of the threads (17 blocks of 3 leave one thread
  26 examples of (c)'s 50): 0.99x to 1.00x at (c), (b) forward 1.02x to 1.03x; one 4-D
  matmul for all HH products and one sum over filter rows (the products' buffer HH times
  the output block): (c) 1.00x to 1.08x, (b) 1.04x to 1.19x; examples side by side in
  one S (a few junk rows between them) with the filter rows stacked in one GEMM, (HH*F,
  C*WW) @ (C*WW, n*rows*W_out): that GEMM ran at 173 GFLOP/s of useful work against 161
  (n = 3, one thread), but the forward took 1.09x to 1.14x ((b): 1.9x to 2.6x); blocks
  of 0.5 and 2 MiB (1.01x, 1.12x at (c)). Winograd F(2x2, 3x3) was considered, not
  built: its transforms are strided passes with inner loops of W_out / 2 values (8 at
  (c)), by the per-loop cost above about as long as the GEMM time it saves.
  Round 6 altogether (with dw's 4-D product below), against round 5 (main 41025bd) and
  PyTorch in one process, interleaved (medians, two threads, float32 unless named, load
  0.6 to 1.7 on 2 cores, no other helper; four runs of (b) and (c), two of (a)):
  fwd + bwd 0.92x to 0.95x the time at (c) (over PyTorch's: 1.61 to 1.74, was 1.75 to
  1.84), 0.92x to 0.95x at (b) (0.94 to 1.02, was 0.98 to 1.10), 0.98x to 1.00x at (a)
  and 0.97x to 1.03x at (a) float64 (code paths unchanged there: noise). ``make bench``
  after: (c) 1.75, (b) 0.98, (b) float64 0.47 (was 0.51), model rows 1.07 and 1.05 (were
  1.08 and 1.07).
* **dw** is ``sum over n of im2col(n) @ dout(n).T``, (K, P) @ (P, F), then transposed:
  OpenBLAS ran this orientation of the same product 1.3x faster than ``dout(n) @
  im2col(n).T`` (10.7 vs 15.5 ms at (b), one thread). The im2col matrix is recomputed in
  the backward pass, not cached: the whole batch's matrix would cost C*HH*WW times the
  input's memory (57 MB at (b)), and making it again from the cached input is cheap.
  The same row of ones makes the product's last row db, instead of a reduction over
  dout (backward 0.94x to 0.96x at (a) and (b), one thread). At stride 1, filter row p
  of dw.T is ``S's view(p) @ dout(n).T`` (the row-shift matrix above); dout(n).T is made
  contiguous once per block for the HH products (OpenBLAS ran (193, 256) @ (256, 64)
  1.09x faster with it than with the transposed view; the same copy in im2col's dw at
  (a), one thread, made that dw 1.65x slower: there the copy costs more than it saves).
  Since round 6 one numpy matmul makes all HH of a block's products (a 4-D view of S,
  the filter rows an axis of stride W_out, S's row of ones in each: db HH times, one
  row more of GEMM work) and one add accumulates them per example slot: 2 calls per
  block instead of 3*HH. Two threads: at (b) dw took 5.2 instead of 6.6 ms (the short
  calls' GIL handoffs), at (c) 4.8 as before; one thread 0.95x at (b), 1.00x at (c).
  The transposed view of dout(n) instead of the copy: no faster at (c), 1.1x slower at
  (b); a deeper GEMM with the block's examples side by side (K = n*rows*W_out, junk rows
  of d zero): 137 against 149 GFLOP/s at (c), one thread. Since round 15 the stride-1
  products run the other way round, ``dout(n) @ view(p).T`` (F by C*WW + 1, no copy of
  dout), in float64 and, in float32, where F and C*WW + 1 are both at least
  FILTERS_FIRST_FROM (10): on this machine kind OpenBLAS runs that orientation faster.
  A layer whose forward pass copies its row shifts into im2col matrices (few channels)
  and that has at least IM2COL_DW_FROM_FILTERS filters makes dw the same way, ``dout(n)
  @ im2col(n).T``: one deep product per example instead of HH narrow ones.
* **dx** depends on the geometry (``_input_gradient_method``):
  - stride 1 and C >= F: a convolution itself, dout padded by the filter size less one,
    correlated with the flipped filters (C and F swapped) through the forward's product
    (row shifts since round 5: dx at (c) 0.84x the time on one thread, 0.87x on two;
    dout is padded block by block too, or cut where pad > HH - 1). Its GEMM has C rows,
    so it wins only when C is not small: measured over 20 geometries, it was faster
    exactly when C >= F (1.05x to 1.44x; (c): 9.5 vs 12 ms),
    and up to 8x slower when C is small ((b): 123 vs 15 ms).
  - stride 1 and C < F: the gradient of every im2col entry (``w.T @ dout``, one GEMM),
    folded back onto the image in one numpy call. With the padded image flattened row
    by row (row length Wp), filter offset (p, q) is a shift by ``p*Wp + q``; dout is
    widened to rows of Wp (zeros past W_out) so the GEMM writes each im2col row as one
    flat run into a zero-margined buffer, and a strided view reads all HH*WW shifted runs
    at once, summed over the offset axes. Before, the fold was HH*WW strided slab adds:
    14 ms of the 22 ms dx at (b), one thread; now about 4 ms (the GEMM writes 19% more).
    Tried and dropped in round 7: row shifts of the widened dout over the filter columns
    (F*WW rows), so that one GEMM, (C*HH, F*WW) @ (F*WW, run), sums over q and only the
    HH filter rows are left to fold: the GEMM is 7 times deeper and writes 7 times less,
    but OpenBLAS ran it slower (136 against 104 us per example at (b), one thread: 21
    rows, each value of the 7-times-larger shifted dout used 21 times) and the shifts
    cost 50 us more: dx 12.1 against 8.8 ms on two threads.
  - stride > 1: that GEMM, then one strided slab add per filter offset (small at (a)).
    Adding each phase of the stride (the padded positions one filter offset reaches)
    into a contiguous buffer first, then copying the phases into dx, was only 2% to 4%
    faster at (a): dropped. What bounds these adds is numpy's overhead per row of W_out
    (16) values, not the strides.
  ``input_grad=False`` skips dx (a first layer's input is the data; PyTorch does the
  same for inputs that need no gradient): about half of the backward's work.
* **Blocks and threads.** The batch is cut into blocks of about BLOCK_BYTES of work
  buffer (1 MiB measured best among 0.25 to 4 MiB at (b) and (c), and again in round 3:
  2 MiB took 1.01x to 1.10x the time: the buffer stays in the per-core L2 between the
  copy that makes it and the GEMM or fold that reads it); pools use the same size, in
  bytes of input. The two paths of few input channels take FEW_CHANNELS_BLOCK_BYTES
  (round 15). Smaller pool blocks (256 KiB) looked 0.74x to 0.94x the time on two
  threads at load 4 to 5 on 2 cores, but took 1.07x to 1.70x at load 2, where a second
  core is really there and the extra numpy calls cost GIL handoffs: dropped. A call
  under INLINE_BYTES (4 MiB) of work runs its blocks on the calling thread: a second
  thread costs a GIL handoff around every numpy call, more than it saves on short calls
  (see INLINE_BYTES). A larger call runs on the threads, at least two blocks per thread:
  WORKERS threads (numpy releases the GIL in copies and BLAS calls) share one iterator
  over the blocks: each allocates its buffers once per call and takes blocks until none
  is left, so a thread slowed down by other processes does less of the work; BLAS runs
  single-threaded meanwhile (one BLAS thread per block thread). Round 5 tried and
  dropped, measured interleaved at load 0.4 to 2 on 2 cores: BLAS on two threads under
  one block thread (each block's copy, then its GEMM on both cores): 1.56x to 1.88x the
  time at (b) and (c), most likely because OpenBLAS's threads fall asleep between two
  GEMMs (the copy between them outlasts OPENBLAS_THREAD_TIMEOUT) and each GEMM wakes
  them (back to back, the same GEMMs ran 1.6x faster on two BLAS threads than on one);
  blocks of 2 or 4 examples at (c) (0.99x, 1.09x); running conv calls under
  INLINE_BYTES on two threads (a conv threshold of 2 MiB, so (a) float32 splits): 0.86x
  to 0.92x the fwd + bwd time on a quiet machine, but with one busy process beside it
  the forward took 1.15x to 1.2x and the backward 1.07x to 1.10x: not worth the risk
  that INLINE_BYTES describes. No buffer is larger than a thread's block buffers, apart
  from the output and the gradients themselves. A strided layer's backward pass under
  INLINE_BYTES but over OVERLAP_BYTES puts dw on a helper thread beside dx instead
  (round 11).
* **Max pooling**, tiling windows (stride = window, the 2x2/2 of the networks). The
  forward pass copies each block offsets first, (ph, pw, n, C, H_out, W_out), then runs
  ``_first_max_of`` over the ph*pw contiguous offset arrays: out = the maximum and, kept
  in the cache, the offset p*pw + q of each window's first maximum in row-major order
  (the naive layer's tie rule: a later offset takes over only when strictly larger), one
  byte per window (two past 256 offsets). The backward pass never reads x: per offset,
  ``dx[offset] = dout * (first == offset)``, two numpy calls, one on the bytes. Same
  operations whatever the values, so ties (post-ReLU zeros) cost nothing extra. Why the
  copy: every numpy inner loop over an offset view of x moves W_out (16) strided values,
  and comparisons of strided values are not vectorised (np.equal of a strided view: 21
  us, contiguous 4 us, per 42 3x32x32 float64 examples); the copy (60 us) and the passes
  on contiguous arrays (45 us) cost less than the same passes on the views (150 us). The
  forward's blocks are half the usual input (the copy is as large as its input: both
  stay in the cache; forward 0.93x). Before (round 4) the forward kept only out, and the
  backward walked the offsets with four calls each on strided views (compare x with the
  maximum, a mask of the windows already served, its update, the product): 2.6x to 5.9x
  PyTorch's backward. Not pursued: a running remaining gradient with nothing more kept
  (r = dout; dx at each offset = r * (x == max); r minus that), three strided calls per
  offset instead of four, but by the per-call times above the strided compare of x is
  most of their cost. Tried and dropped (times over the kept version's, one process,
  mostly 3x32x32 float64 and float32 blocks): first maxima on the strided views without
  the copy (forward 1.18x to 1.33x); rows copied instead of offsets, each row's pw
  columns a uniform-stride view (1.19x to 1.41x); the tiling pool run as a separable one
  (1.08x to 1.36x); dx written row by row from dout repeated along the width (backward
  1.3x); dx made with ``np.copyto(..., where=...)`` or with float masks instead of bool
  ones (no faster); two threads for the 3-channel pool (1.07x); forward blocks of a
  quarter or an eighth of the usual input (1.08x, 1.29x).
* **Max pooling**, windows that overlap or leave gaps (3x3/1): separable. The maximum of
  each window row over its pw columns first, then of ph such row maxima ((pw-1) + (ph-1)
  passes instead of ph*pw - 1); the cache keeps the first column that holds each row
  maximum and the first row whose maximum is the window's, which locate the row-major
  first maximum. The backward sends dout to those rows (``drow``), then drow to those
  columns, the overlaps adding up: three numpy calls per row or column offset (on stride
  1, two for the first), instead of five (round 4 compared with the row maxima, kept in
  the cache as a float array as large as the input, and with the maxima). Stride 1 (the
  3x3/1 of the bench) runs on each block flattened: column offset q is a shift of the
  flat block by q, row offset p a shift by p*W, so every pass is one contiguous inner
  loop over the block instead of one loop per image row; positions whose windows would
  wrap past a row get values that mean nothing, left out of out (forward) or carrying
  zeros (backward: dout goes into the corner of a zeroed block). On strided views, as
  other strides still run, 3x3/1 took 1.29x the time forward and 1.44x backward
  (interleaved, 100x32x32x32 float64). Both bullets, measured in one process,
  interleaved (round 4's code, this code, PyTorch 2.13 CPU; medians; two threads,
  OpenBLAS overrides unset, the course's process settings; each group of cases started
  when no other process used the CPU, load average 0.6 to 1.8 on 2 cores), fwd+bwd in
  ms, round 4 / now / PyTorch (now over PyTorch): float64, 2x2/2 3ch 1.27 / 0.85 / 0.93
  (0.91, was 1.37), with ReLU input 1.32 / 0.88 / 0.90 (0.98, was 1.47; 0.94 to 1.05
  over four quiet runs), 32ch 8.99 / 6.95 / 10.60 (0.66) and 8.71 / 6.92 / 9.11 (0.76),
  3x3/1 39.3 / 21.8 / 36.9 (0.59) and 38.1 / 22.1 / 34.9 (0.63); float32, 2x2/2 3ch 0.66
  / 0.49 / 0.80 (0.62) and 0.68 / 0.52 / 0.75 (0.69), 32ch 4.75 / 3.68 / 9.04 (0.41) and
  4.87 / 3.74 / 8.46 (0.44), 3x3/1 19.5 / 12.0 / 38.0 (0.31) and 19.6 / 12.0 / 35.7
  (0.34). The forward passes take longer than round 4's (3ch float64 0.39 vs 0.31 ms),
  the backward ones half the time or less. Peak memory of one forward + backward
  (tracemalloc), float64: 2x2/2 3ch 2.6 MB (was 3.4), 32ch 26.1 (32.2), 3x3/1 37.6
  (81.2).

* **Convolution then tiling max pool, fused** (``_conv_pool_forward`` and
  ``_conv_pool_backward``, behind ``layer_utils.conv_relu_pool_forward``/``backward``,
  the first layer of ThreeLayerConvNet; other pool geometries are the composition of the
  layers above). The forward pass pools each block's conv output (16 examples, 2 MiB at
  32x32x32 float32) while it is in the cache, and keeps each window's first-max offset
  (one byte per pooled value) instead of the conv output: the 13 MB conv output at batch
  100 is never written, and the pool backward's 13 MB gradient is never made unless dx is
  asked for. Its GEMM is the transposed one, ``im2col.T @ w.T`` (positions, filters):
  the pool's offset views then read runs of F contiguous values, and the first-max pass
  took 135 + 19 (transposing the pooled block) instead of 226 us per 8 examples (one
  thread); that orientation's GEMM also ran 0.9x the time of ``w @ im2col`` at (b).
  The first-max offset is ``max(first, offset * (window > running max))``: offsets come
  in increasing order, so a later one takes over only when strictly larger (the naive
  tie rule); ``np.copyto(first, offset, where=...)`` took 8x as long (random masks defeat
  the branch predictor). The backward pass makes each block's conv-output gradient,
  ``dpooled * (first == offset)``, in two broadcast numpy calls, laid out (positions,
  filters) as the right operand of ``im2col @ g`` (the orientation ``_weight_gradient``
  measured fastest, here without a transposed operand). Tried and dropped: im2col
  columns ordered pool offset first (each offset a contiguous run of the GEMM output):
  its copy took 51 instead of 24 us per example, forward 1.18x; the backward's gradient
  made offset by offset per example (10 short numpy calls each: the threads waited for
  the GIL; the step took 0.96x the composition's instead of 0.88x); backward blocks of
  4, 16 or 32 examples instead of 8 (0.98x to 1.03x: noise); a two-step im2col copy (each
  column offset's shifted rows first, then contiguous runs of H_out*W_out): 0.75x the
  copy's time on one thread at (b), but the step took 1.10x to 1.14x on two threads.
  Round 5: with 5x5 or larger filters, each im2col column covers the rows of a whole
  pool window (8 input rows for 7x7 filters and 2x2 pools) against weights that hold
  each filter once per window row (``_FusedLayout``): 0.57x the im2col copying for 1.14x
  the GEMM work, forward + backward 0.93x-0.95x the time at ThreeLayerConvNet's first
  layer (batch 50 and 100, float32, two threads, interleaved against round 4, load 0.6 to
  1.1); with dx 0.99x, float64 0.97x.

Measured at this module's commit against the one before these choices (single thread,
CPU time, medians of 15 interleaved runs; load 5 to 6 on 2 cores; PyTorch 2.13.0 CPU,
OpenBLAS 0.3.31 SkylakeX kernel, no OpenBLAS override): fwd+bwd over PyTorch's, float32,
(a) 0.86 (was 0.86-0.92), (b) 0.89 (1.23), (c) 1.75 (2.15), pools 0.42-0.83 (0.56-1.11);
float64 (a)-(c) 0.50-0.96 (0.64-1.08), pools 0.66-1.25 (0.89-1.87); ThreeLayerConvNet
loss + gradients at batch 50 and 100, 1.53-1.55 (1.91-2.11) times PyTorch's step, which
computes no gradient for the images (the kit's layers return dx; the same loss with
``input_grad=False`` on the first layer: 1.06 and 1.17, another run, load 8).

Round 3 (bias and db in the GEMM, cache-sized blocks on one thread under 4 MiB),
``make bench --threads 1`` (every library on one thread; load 3 on 2
cores): fwd+bwd over PyTorch's, float32, (a) 0.74, (b) 0.84, (c) 1.75, pools 0.41-0.59;
float64 (a)-(c) 0.50-0.83, pools 0.60-0.88; the training step 1.06 (batch 50) and 1.15
(batch 100). What still bounds (c) is OpenBLAS: its GEMMs of these shapes (64 x 576 by
576 x 256 per example) run at about 140 GFLOP/s on one core, where PyTorch's forward
reaches about 165, and the im2col copies (numpy moves W_out = 16 values per inner loop)
add 15%. On two threads the ratios depend on the load: PyTorch's OpenMP threads
spin-wait, and on a busy machine they lose far more than these layers (see kit.bench).
Round 4 (the fused conv-relu-pool of ThreeLayerConvNet's first layer), float32, two
threads, the lead's process settings (OPENBLAS_THREAD_TIMEOUT=16, malloc thresholds
32/128 MiB), OpenBLAS overrides unset, load 0.6 to 1.6 on 2 cores. The training step
(``model.loss``, images' gradient skipped) against the composed sandwich of round 3,
both in one process, interleaved (kit.bench's ``_interleave``): 0.89x-0.90x at batch 50,
0.85x-0.86x at batch 100; against PyTorch 1.23x-1.25x (was 1.38x-1.40x) and 1.12x-1.18x
(was 1.31x-1.38x). Timed part by part at batch 100 (load 1.6): conv + pool forward 10.4
ms (was 10.0: the first-max offsets cost what the smaller writes save), backward with
``input_grad=False`` 11.1 ms (was 15.1: pool backward 6.4 + conv backward 8.8 before).
With dx too (kit.bench before, then after): 0.94x-1.00x. Peak memory of the sandwich's
forward + backward at batch 100 (tracemalloc): 16.2 MiB instead of 35.4 (28.6 instead
of 36.3 with dx). Float64, batch 50: forward 1.19x the composition's (OpenBLAS runs the
transposed GEMM slower in float64, and the pool reads twice the bytes), backward 0.75x,
together 0.92x; float64 is what gradient checks use, on small inputs. Measured with
scripts kept out of the tree; ``make bench`` shows the model rows.
A finding for the next round: two threads' short numpy calls barely overlap on this VM
(np.maximum on 256 KiB arrays: 13.4 ms on one thread, 14.5 ms on two for the same
calls), while GEMMs scale 1.9x: every elementwise pass between GEMMs costs its full
single-thread time in a threaded block.

Round 7 (strided layers: dx by phases, the forward's im2col kept for dw; see the dw and
dx bullets), ``make bench`` on a quiet machine (load 0.4 before, OpenBLAS overrides
unset): (a) float32 1.04 (was 1.39 to 1.41), (a) float64 1.07 (was 1.22 to 1.24); the
(a) backward now takes 0.76x PyTorch's (1.27 against 1.67 ms), the forward 2.4x (0.81
against 0.34: PyTorch's oneDNN convolution against one thread's im2col copy and GEMM,
about 0.25 and 0.34 ms). Tried and dropped, (a), interleaved in one process with
PyTorch: filling im2col straight from x, one copy per filter offset, with no padding
pass (forward 1.0x in float32, 1.2x in float64: nine numpy calls per block instead of
two cost what the padding pass saved); the padded rows sorted by phase of the stride, so
that each im2col row is one strided run of P values (one copy per filter row, valid
when WW <= pad + stride): the im2col copy 0.85x on one thread (0.27 against 0.32 ms; the
copying is bound by its strided reads of each value, not by numpy's inner loops), fwd +
bwd 0.97x to 1.01x in float32 and 1.05x in float64 (more calls per block on two
threads); (a) float32 on two threads (1.12x), its forward alone on two (1.02x to 1.04x),
and float64 on one (1.10x); dx or dw alone on one thread in float64 (1.01x, 1.11x);
blocks of 0.25, 0.5 and 2 MiB (1.00x, 0.97x, 1.01x: within this machine's noise, which
two identical copies of the code measured at 0.96x to 0.99x); one GEMM per batch on an
im2col laid out (K, N*P) (OpenBLAS threads it: float64 0.42 against 0.81 ms, but the
output's transposing copy takes 0.35).

Round 8 (2026-12-03), all tried and dropped; one thread unless said, float32 unless said.
(b) forward: 8.8 ms (GEMMs of K = C*WW = 21 at 155 GFLOP/s 6.2 ms, the HH - 1 adds 1.5,
the row-shift copies 0.4) against PyTorch's 5.3; on two threads 5.8 against 2.7 (its
scaling 1.94x, ours 1.52x: the GEMMs take 14% longer with both cores busy). One K = 147
GEMM on an im2col copied from the row shifts (no adds): 1.19x to 1.36x (copying 147
rows costs more than the adds). Blocks balanced to a multiple of the thread count (25
blocks of 4 on two threads made 26 of 3 or 4): (b) forward 0.98x to 1.01x, backward
0.93x to 1.01x, (c) 0.99x, within the noise. 2x2/2 max pool, float64, 3x32x32: the
backward's cost is its four strided writes of dx (0.12 ms each, against 0.03 contiguous);
scattering dout with np.put at flat indices (0.43 ms against 0.39 to 0.45), an
interleaving GEMM with a 2x2 identity (0.17 ms for that copy alone), complex128 pairs
(0.17 ms per pair of offsets), and dout widened by a GEMM with a 0/1 matrix then masked
row by row (0.55 against 0.42 ms) all lose: numpy has no fast interleave. The forward
by rows first (each window row pair's maximum and which row, on contiguous rows, then
the row maxima split by column offset: half the strided reads of the offsets-first
copy) took 1.4x to 1.6x the time (0.50 to 0.56 against 0.36 ms: fourteen numpy calls
per block). Either pool pass on two threads: 1.13x to 1.20x. (a)'s forward as one GEMM
per block on an im2col laid out (K, n*P), which OpenBLAS runs on both cores, its output
reordered while in the cache: 1.12x to 1.26x in float32, 1.02x to 1.12x in float64
(blocks of 10 to 100 examples).
Later the same day, and a correction. The 2x2/2 pool backward as two passes on dx's
own layout: dout widened along the rows (each value twice, a copy or a GEMM with a 0/1
matrix) times a one-byte mask of the first maxima kept by the forward in x's layout
(two table look-ups per block, 0.17 ms): 0.45 to 0.53 ms against 0.40 to 0.42 for the
backward alone (3x32x32, float64, 42-example blocks), before the mask's cost. The
finding of round 4 that two threads' elementwise passes barely overlap is not the GIL:
two processes (no shared GIL) do no better. np.maximum on three float64 arrays of
32768 values (768 KiB), the same calls split over two processes: 0.80x to 0.99x the
one-process time; of 262144 values 0.92x to 0.97x; of 8192, 1.28x to 1.45x; of 1024,
1.41x to 1.57x. The same split of a (64, 576) @ (576, 256) float32 GEMM: 1.82x to 1.88x;
of a stride-2 copy: 1.45x to 1.55x; of a pure-Python loop: 1.68x to 1.75x (quiet
machine, one run each). One core already takes what the VM allows of that data path,
so elementwise passes gain nothing from a second thread here, whatever the block size.

Round 9 (2026-12-03, fourth session), (a) only, both tried and dropped. (1) The padded
input split into its four stride phases, each 17x17 at (a), so that every im2col row is
one contiguous run of 16 output rows of 17 columns, one of them junk; rows ordered by
phase and the weights' columns permuted to match. Per block of 34 examples, float32, one
thread: the phase split 0.067 ms and the copies 0.055, against 0.150 for the padding and
im2col copy of the current path; the GEMM 6% wider (0.122 against 0.118 ms); but cutting the
junk column off the output, a copy with one numpy inner loop per output row, took 0.087.
Forward 1.03x to 1.14x the time in float32, 1.39x in float64. Without the cut the output
would be a strided view, and dw would have to widen dout the same way. (2) dw as one GEMM
with K = N*P (the kept im2col laid out (K + 1, N*P), dout copied to (F, N*P)): OpenBLAS
runs (28, 25600) @ (25600, 25) at 37 to 48 GFLOP/s: 0.74 to 0.98 ms for the GEMM alone,
plus 0.18 for the copy, against 0.51 ms for the current batched product of 100 GEMMs.
It stays slower with each block's operands in the cache: 250 to 268 us against 141
(34 examples, one thread). Medians of interleaved runs, one process, load 0.1 to 0.8.

Round 10 (2026-12-03, fifth session), (a)'s dx, tried and dropped: the phase sums of
``_input_gradient_by_phases`` over runs that span all of a block's examples. The GEMM
writes each example's im2col gradient into a (K, n, row) buffer (rows zero-margined as
now), so one numpy call sums an offset's runs for the whole block: C inner loops of about
n*row values instead of n*C of rows*W_out. Results bit for bit the same. One thread: dx
0.93x the time in float32 (0.76 against 0.82 ms), 0.95x in float64. But (a) in float64
runs on two threads (5.5 MB of im2col gradient, above INLINE_BYTES), and there it took
1.04x to 1.05x (1.32 to 1.34 against 1.27 to 1.28 ms, three runs). What bounds those sums
is their last add, which writes the stride-s target: 14 us per 33k float32 values against
4 us into a contiguous buffer. With contiguous targets the interleave moves into the
crops, whose inner loops are then half as long: 0.98x in float32. A call's fixed cost
(checks, buffers, views) is about 35 us forward and 70 us backward at (a), 4% of its
fwd + bwd time. Measured with scripts kept out of the tree.

Round 11 (2026-12-03, seventh session), kept: a strided layer's backward pass computes dw
on a helper thread while the calling thread computes dx (``_side_by_side``), when its
im2col work lies between OVERLAP_BYTES (2 MiB) and INLINE_BYTES, where each part runs
on one thread. dw is one batched GEMM over the kept im2col; dx by phases is a GEMM and
then mostly short elementwise passes, which a second thread of their own does not speed
up (round 8), but which leave the other core to a GEMM. Results are bit for bit those of
one part after the other. At (a), float32, kit.bench's interleaving against the same
code with the overlap off and PyTorch, in one process (medians, quiet machine, load 0.6
to 0.9 before, no other helper): fwd + bwd 0.86x to 0.89x the time (2.43 to 2.54
against 2.78 to 2.93 ms; backward 1.29 to 1.33 against 1.55 to 1.61), over PyTorch's
0.99 to 1.03 (was 1.13 to 1.19 in the same runs). One part beside the other, alone:
0.73x to 0.81x at batch 100, 0.84x to 0.93x at 50 (1.3 MiB), 1.18x at 20 and 1.36x
at 10 (the helper's wake-up and hand-back cost about 0.1 ms); after a forward pass, as
in training, batch 50 took 1.02x to 1.05x, 75 (2.0 MiB) 0.93x to 0.99x: hence 2 MiB.
Other strided layers of 2 to 4 MiB: 0.78x. With busy processes beside it (one or two
pure-Python loops on the 2 cores), side by side took 1.19x to 1.54x the time of one
after the other until a helper that has not started when dx is done is taken back and
run on the calling thread; with that, 0.96x to 1.07x. Tried and dropped the same day:
at stride 1 (dx also GEMM-bound) side by side took 1.00x to 1.27x; the forward's im2col
copies on the calling thread with each block's GEMM handed to the helper (1.01x to
1.11x: a hand-off per block, and the GEMM reads what the other core just wrote); dw in
one product for the whole batch (1.00x to 1.10x); side by side above INLINE_BYTES, each
part on one thread, at (a) float64 (backward 0.88x to 0.90x, but the forward's blocks
then stayed on one thread too: fwd + bwd 1.10x to 1.14x).

Round 12 (2026-12-03, eighth session, a new machine: AMD EPYC (Zen 3), OpenBLAS's
Haswell kernels, 67 to 92 GFLOP/s on one thread's 256^3 float32 GEMM, half the last
machine's 143). There (b) float32 read 1.40 over PyTorch (its forward 13.3 against 6.2
ms) and (a) 0.92, where the last machine read 1.08 and 1.07: the row-shift GEMMs of (b),
(32, 22) @ (22, 1024), ran at 39 GFLOP/s on one thread. Kept: a stride-1 forward with
fewer than SHIFTS_TO_IM2COL_BELOW (32) row-shift rows copies its row shifts into im2col
matrices and makes one GEMM of HH*C*WW + 1 rows per example (``_shifts_im2col_work``).
One thread, float32, the forward: (b) 0.70x the time (17.0 against 23.6 to 24.4 ms:
copy 3.6, GEMM 18.8 against HH GEMMs 25.6 and adds 4.6); C*WW = 5, 9, 40, 48, 96 and
192: 0.54x, 0.67x, 0.89x, 0.92x, 1.0x and 1.10x. On two threads, as it runs, the
copies' memory traffic costs more: (b) 0.86x to 0.95x (float64 0.73x), C*WW = 5 0.72x,
9 0.93x to 0.99x, 40 1.04x to 1.08x, 48 1.14x to 1.18x: hence 32. Tried and dropped:
dw the same way, 0.85x on one thread but 1.07x at (b) and 1.22x at C*WW = 48 on two;
the im2col copied from the padded input instead of the row shifts (1.04x to 1.14x of
this, one thread). Whole fwd + bwd, interleaved with PyTorch (each run after an untimed
one of its own, as kit.bench does): (b) 0.99x in float32, 0.88x in float64; (c),
whose code did not change, 0.94x and 1.01x, the noise of that run. Medians in one
process, nothing else running, load 0.4 to 1.0 before; scripts kept out of the tree.

Round 13 (2026-12-04, same machine kind). ``make bench`` read (b) float32 1.25 over
PyTorch, the gap all in the forward (15.6 against 7.4 ms; backward 40.9 against 39.7).
One thread, (32, 148) @ (148, 1024) sixteen times (as ``_shifts_im2col_work`` does per
block) ran at 46 GFLOP/s, the same work as one (32, 148) @ (148, 16384) product at 65.
Tried and dropped: the block's im2col laid out (rows, example, P) for that one product,
and its (F, example, P) result copied into place. On two threads, interleaved, forward:
1.17x the time at (b), 1.14x at batch 50, 1.45x and 1.73x at 1 and 3 channels; the
copies' memory traffic costs more than the GEMM gains. Scripts kept out of the tree.

Round 14 (2026-12-04, same machine kind), (b) float32, six ideas, none kept. Where the
time goes, two threads, one process, quiet machine: forward 11.8 ms against PyTorch's
6.0, dw 14.6 and dx 14.3 against about 8 and 19 (PyTorch's backward with and without the
input's gradient). (1) The forward by FFT (rfft2 of the padded input, the products
summed over channels per frequency, irfft2 of each (n, f) map): on one thread the 3200
inverse transforms of 40x40 alone took 23 ms (51 at 38x38) and the batched complex
products 3 to 4, against 26 ms for the whole forward as it is. (2) dw's row-shift
products with S padded from C*WW + 1 = 22 to 24 rows (on one thread OpenBLAS ran (22,
1024) @ (1024, 32) in 1.1x to 1.2x the time of (24, 1024) @ (1024, 32); 21, 23 and 25
rows were slow too, 16, 20, 24, 28 and 32 not): dw 0.91x to 0.93x the time on one thread
at (b), but 0.97x to 0.98x on two, and 1.04x to 1.11x with 49 and 193 rows padded to
multiples of 8. This machine's L2 cache is 512 KiB per core, half the one BLOCK_BYTES
was tuned on, and one example's im2col at (b) is 606 KB (the flat fold's dx buffer 987
KB): (3) the forward's im2col per half example (512 positions, one copy and one GEMM
each): 0.96x the time in float32, 0.90x in float64, 0.94x at batch 50, two threads; as
written, one example per loop, the small layers took 1.3x to 3.5x (it would have to
apply only above a size, for about 0.5 ms of (b)'s 46: not kept). (4) dx's flat fold one
channel at a time (GEMMs of 49 rows, their folds a third as large): 0.96x to 0.99x on
two threads in float32, 1.19x in float64. (5) BLOCK_BYTES of 512 KiB, the L2's size,
against 1 MiB, interleaved, two threads, fwd + bwd: conv (a) to (c) 0.94x to 1.05x, the
pools 1.33x to 1.55x, the model step 1.01x to 1.03x: 1 MiB stays. (6) The stride-1
backward with C < F in one pass over the blocks (each block's dw products, then its dx
GEMM and fold, dout read once): (b) 0.98x to 1.01x in float32, batch 50 0.89x to 0.91x,
smaller layers 0.69x to 1.30x with blocks sized as now (2.6x to 3.5x with one example
per block): no clear gain. Four ``make bench`` runs the same morning, load 0.5 to 1.6
before: (b) float32 0.99, 1.02, 1.08 and 1.15 over PyTorch (forward 12.3 to 15.7 ms
against 5.9 to 7.4, backward 28.6 to 37.7 against 28.1 to 40.0). Scripts kept out of the
tree.

Round 15 (2026-12-04, same machine kind), kept: dw's stride-1 row-shift products as
``dout(n) @ view(p).T``, (F, P) @ (P, C*WW + 1), the view read as a column-major
operand, instead of ``view(p) @ dout(n).T`` with dout(n).T copied once per block (the
orientation round 6's machine, OpenBLAS's SkylakeX kernels, ran faster). One thread, a
block's products alone: (b) 0.81x to 0.95x the time in float32, 0.63x to 0.83x in
float64; (c) 0.93x to 0.98x and 0.91x. Two threads, dw alone, interleaved in one
process: (b) 0.89x (12.9 against 14.5 ms) in float32, 0.83x in float64; (c) 0.97x to
1.00x and 0.92x. Over 35 stride-1 geometries (C*WW + 1 from 6 to 49, F from 8 to 64),
float32: 0.42x to 0.98x where F and C*WW + 1 were both 10 or more, but 1.03x to 1.44x
with 8 filters and 1.07x to 1.13x at C*WW + 1 = 6 with 16 or 32 (OpenBLAS's float32
kernels on narrow operands): those keep the old orientation (``_filters_first``).
float64: 0.56x to 1.00x in all 35. The whole backward, interleaved: (b) 0.91x to 0.93x
in float32, 0.88x in float64; (c) 0.99x and 0.96x to 0.97x; batch 50 of (b) 0.94x to
0.97x. Tried the same day and not kept: the strided layers' dw (im2col path) and the
fused conv-pool's dw the other way round too, one thread: (a) 1.2x to 1.6x in float32
(0.87x in float64, where (a) already meets its target), the fused layer 0.97x to 1.04x
(noise); and dw as one deep product per filter row over the block's examples side by
side (K = n*rows*W_out, d widened with zeros): 0.87x to 1.16x at (b), no clear gain. dw
from im2col matrices copied from the row shifts, as the forward pass makes them, as
``d[n] @ im2col(n).T`` (F by HH*C*WW + 1, one deep product per example): 0.78x to 0.86x
the time of a block's products on one thread at (b), but, in blocks of BLOCK_BYTES (one
example at (b)), the whole backward on two threads took 0.99x to 1.04x in float32 at (b)
and batch 50, and 1.05x to 1.16x in float64 at 3x3 and 5x5 filters on 2 and 3 channels
(the copies' memory traffic again, as in round 12); kept later in blocks of
FEW_CHANNELS_BLOCK_BYTES, see below. Where (b)'s dx went then, one thread, per example
(blocks of one, float32): its GEMM, (147, 32) @ (32, 1216), 0.17 ms at 67 GFLOP/s, its
fold 0.04, the rest 0.015; the GEMM's depth is F = 32, and each value it writes gets 32
multiply-adds. Kept, later the same day: blocks of FEW_CHANNELS_BLOCK_BYTES (3 MiB) for
the two paths of few input channels (the forward's im2col copies of the row shifts, dx's
flat fold), where blocks of BLOCK_BYTES held one example each. Two threads, interleaved
against the code before, fwd + bwd: (b) 0.91x to 0.93x the time in float32 (batch 50:
0.91x), 1.00x in float64; other layers of 1 to 8 channels and 3x3 or 5x5 filters 0.86x
to 1.01x. Larger blocks for everything instead (2 or 4 MiB): (b) 0.91x to 0.93x too, but
the model step 1.01x to 1.10x and the 3x3/1 pools up to 1.48x. Then dw through the
im2col copies, in those blocks too, for layers with at least IM2COL_DW_FROM_FILTERS (32)
filters: backward 0.91x to 0.94x the time at (b) (float32 and float64), 0.87x to 0.99x
at other 32-filter layers of 3 and 4 channels; fwd + bwd at (b) 0.93x in float32, 0.99x
to 1.01x in float64, batch 50 0.95x to 0.96x. With 12 or 16 filters on 2 or 8 channels
the backward took 1.01x to 1.14x: the copy costs the same whatever F, the deeper
products gain in proportion to F. Scripts kept out of the tree.

Round 16 (2026-12-04, same machine kind), measured, nothing kept. (b)'s time now goes to
its three products. One thread, a block of four examples: the forward's (32, 148) @ (148,
1024) ran at 53 to 57 GFLOP/s with the host's 256^3 product at 66, 77 with it at 90 (16
to 64 filters: 66 to 84), the block's row-shift fill and im2col copy 0.04 and 0.08 ms
beside its products' 0.59 to 0.68; dx's (147, 32) @ (32, 1216) ran at 55 to 56. On two
threads the products alone, 25 blocks of four examples, took 1/1.6 of one thread's time
(112 to 118 GFLOP/s in all), but 1/1.85 (140) when each product's operand was one example
reused from the L2 cache: the threads share the L3 bandwidth the blocks' im2col matrices
need. PyTorch's whole forward reached 140 to 163. (1) Two output columns per product row:
weights (2F, C*HH*(WW + 1) + 1), the second F rows shifted by one column, on half the
positions, so the products have twice the rows: the products alone 0.96x to 0.97x the
time in float32 (forward and dw orientations), 1.06x in float64; four columns 1.13x to
1.17x. Not worth a second layout. (2) dx at stride 1 from WW shifted copies of dout
((F*WW, P) per example), one (C*HH, F*WW) product, then a fold over filter rows only (HH
slabs, not HH*WW): per block of 8, the product ran at the flat fold's rate (1.67 against
1.63 ms), the fold took 0.04 ms instead of 0.32, but the copies 0.28: no gain. (3) (a) on
two threads (INLINE_BYTES of 1 MiB): on a quiet machine the forward took 0.75x the time,
the backward 1.12x (it already runs dw beside dx); the losses under load (INLINE_BYTES's
comment) stand. Where (a)'s forward goes, one thread: padding 0.19 ms, im2col copy 0.56
(inner runs of 16 values at stride 2; from four stride phases, 0.28 to make them and 0.48
to copy), its 100 products 0.76. Scripts kept out of the tree.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from course._checks import conv_geometry, expect_ndim, expect_shape, pool_geometry

__all__ = [
    "conv_backward_fast",
    "conv_backward_im2col",
    "conv_backward_strides",
    "conv_forward_fast",
    "conv_forward_im2col",
    "conv_forward_strides",
    "max_pool_backward_fast",
    "max_pool_backward_im2col",
    "max_pool_backward_reshape",
    "max_pool_forward_fast",
    "max_pool_forward_im2col",
    "max_pool_forward_reshape",
]

# Bytes of one block's largest work buffer (an im2col matrix, say). Blocks of examples
# this size stay in the per-core L2 cache between the copy that makes them and the GEMM
# or fold that reads them, and large enough that each GEMM amortises numpy's overhead.
BLOCK_BYTES = 1 * 2**20

# Blocks of the two paths that only layers with few input channels take, the stride-1
# forward through im2col copies of the row shifts (``_shifts_to_im2col``) and dx by the
# flat fold (C < F): one example's buffer there is most of BLOCK_BYTES (0.85 MB at (b)),
# so blocks of BLOCK_BYTES held one example, four or five short numpy calls each, and
# the two threads waited for the GIL between them. Round 15, two threads, interleaved,
# 3 MiB against 1 MiB: at (b) the forward took 0.86x to 0.88x the time, dx 0.82x (float32;
# float64 1.00x); 5x5 filters 0.82x to 0.86x; 2 to 4 MiB alike, 6 MiB worse. Other
# paths (dw, the pools, the model step) measured no gain or a loss from larger blocks.
FEW_CHANNELS_BLOCK_BYTES = 3 * 2**20

# Threads that run blocks at once: the cores this process may use (at most 4; beyond that
# the memory bandwidth, not the cores, bounds these layers).
WORKERS = max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                     else (os.cpu_count() or 1)))

# Below this many bytes of work in a whole call, one block on the calling thread. A second
# thread pays only when each of its numpy calls is long: the threads hand the GIL to each
# other around every call, and each handoff waits for a thread to wake (10 to 40 us on
# the development VM). Measured interleaved (load 3 to 5 on 2 cores), two threads took
# 0.91x to 1.33x (median 1.08x) the time of one on the forward and backward passes of the
# 3-channel pools (1.2 and 2.4 MB) and of conv (a) (2.8 and 5.5 MB of im2col); the lead's
# quiet run timed (a)'s float32 forward at 1.9 ms on two threads, where one thread takes
# 1.0 ms of CPU. The 32-channel pools (12.5 MB) and convs
# (b) and (c) (30 MB of im2col) take about half the time on two threads. A busy machine
# makes handoffs worse: the digits network's training step took 1.7 ms on one thread and
# 14 to 90 ms when its pools were split across two.
INLINE_BYTES = 4 * 2**20

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_blas: Any = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="fast_layers")
        return _pool


@contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Limit BLAS to one thread while our own threads run blocks (one BLAS thread per
    block thread), then restore what the user had. Without threadpoolctl: no limit."""
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController

            _blas = ThreadpoolController()
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
            _blas = False
    if _blas is False:
        yield
        return
    with _blas.limit(limits=1, user_api="blas"):
        yield


def _block_size(n: int, bytes_per_example: int, work_per_example: int | None = None,
                block_bytes: int | None = None) -> tuple[int, int]:
    """(examples per block, threads to run them): blocks of about BLOCK_BYTES (or
    ``block_bytes``) of work buffer, so that they stay in the per-core cache, on the
    calling thread alone when the whole call is under INLINE_BYTES of work, else on up to
    WORKERS threads with at least two blocks each, so that a thread slowed down by other
    processes hands its share to the others. The work is the buffer's bytes unless
    ``work_per_example`` says more (a block that fills its buffer several times)."""
    block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
    size = max(1, min(n, block_bytes // max(1, bytes_per_example)))
    work = bytes_per_example if work_per_example is None else work_per_example
    if n * work <= INLINE_BYTES or WORKERS <= 1:
        return size, 1
    return max(1, min(size, -(-n // (2 * WORKERS)))), WORKERS


def _run_blocks(work: Callable[[Iterator[tuple[int, int]]], Any], n: int,
                plan: tuple[int, int], uses_blas: bool = True) -> list[Any]:
    """Run ``work(blocks)`` on ``plan = (block, threads)`` (from ``_block_size``): up to
    that many threads share one iterator over the
    blocks ``(start, stop)`` of range(n): each thread allocates its buffers once, then
    takes blocks until none is left. Returns what each thread's ``work`` returned.

    The calling thread works too; a helper that has not started by the time the blocks
    run out is cancelled rather than waited for. ``uses_blas``: limit BLAS to one thread
    per worker meanwhile.
    """
    block, threads = plan
    blocks = iter([(start, min(n, start + block)) for start in range(0, n, block)])
    threads = min(threads, -(-n // block))
    if threads <= 1:
        return [work(blocks)]
    with _single_threaded_blas() if uses_blas else nullcontext():
        mine, ran = _beside_helpers([functools.partial(work, blocks)] * (threads - 1),
                                    functools.partial(work, blocks))
        return [mine] + [helper.result() for helper in ran]


def _beside_helpers(helper_jobs: list[Callable[[], Any]], own_job: Callable[[], Any]
                    ) -> tuple[Any, list[Future]]:
    """Submit ``helper_jobs`` to the pool's threads, run ``own_job`` on this one, then
    cancel the helpers that have not started (nothing is left for them, or this thread
    runs their job itself) and wait for the others, so that none runs on outside a
    caller's BLAS limit. Returns own_job's result and the helpers that ran."""
    helpers = [_executor().submit(job) for job in helper_jobs]
    try:
        mine = own_job()
    finally:
        # cancel() succeeds only for a job no thread has taken. Only the others are waited
        # for: a cancelled future counts as done only once a pool thread has dequeued it,
        # which a pool busy elsewhere may not do for a long time.
        ran = [helper for helper in helpers if not helper.cancel()]
        wait(ran)
    return mine, ran


# ---------------------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------------------


def _windows(x_pad: np.ndarray, HH: int, WW: int, stride: int, H_out: int,
             W_out: int) -> np.ndarray:
    """View of x_pad shaped (N, C, HH, WW, H_out, W_out): entry [n, c, p, q, i, j] is
    x_pad[n, c, i*stride + p, j*stride + q]. No copy; read only."""
    sN, sC, sH, sW = x_pad.strides
    N, C = x_pad.shape[:2]
    return as_strided(x_pad, (N, C, HH, WW, H_out, W_out),
                      (sN, sC, sH, sW, sH * stride, sW * stride), writeable=False)


def _pad(x: np.ndarray, pad_h: int, pad_w: int | None = None) -> np.ndarray:
    """x with pad_h zero rows above and below and pad_w zero columns on each side."""
    pad_w = pad_h if pad_w is None else pad_w
    if pad_h == pad_w == 0:
        return x
    N, C, H, W = x.shape
    # np.zeros + slice assignment is faster than np.pad (no generic edge handling).
    x_pad = np.zeros((N, C, H + 2 * pad_h, W + 2 * pad_w), dtype=x.dtype)
    x_pad[:, :, pad_h:pad_h + H, pad_w:pad_w + W] = x
    return x_pad


class _Padded(NamedTuple):
    """x (N, C, H, W) as if zero-padded to (rows, cols) with x[:, :, 0, 0] at (top, left),
    made block by block. top or left may be negative and x may reach past rows or cols:
    those parts of x are cut off.

    Padding the whole input first is a serial pass over memory before the threads start
    (0.5 ms at (c), twice per backward); a block padded into its thread's buffer is in
    the cache when its im2col copy reads it, and the threads share the padding."""

    x: np.ndarray
    top: int
    left: int
    rows: int
    cols: int

    def buffer(self, block: int) -> np.ndarray | None:
        """A thread's zeroed buffer (block, C, rows, cols), or None when x needs no
        padding. Every block writes the same region, so the margins stay zero."""
        _, C, H, W = self.x.shape
        if (self.top, self.left, self.rows, self.cols) == (0, 0, H, W):
            return None
        buffer = np.empty((block, C, self.rows, self.cols), dtype=self.x.dtype)
        # Only the margins zeroed: a whole np.zeros took 0.05 ms of (a)'s 2.2 ms.
        rows, _ = _overlap(self.top, H, self.rows)
        cols, _ = _overlap(self.left, W, self.cols)
        buffer[:, :, :rows.start] = 0
        buffer[:, :, rows.stop:] = 0
        buffer[:, :, rows, :cols.start] = 0
        buffer[:, :, rows, cols.stop:] = 0
        return buffer

    def view(self, buffer: np.ndarray | None, make: Callable[[np.ndarray], np.ndarray]
             ) -> np.ndarray:
        """``make`` (a strided view: ``_windows``, say) of the buffer, or of x itself when
        x needs no padding: made once per thread (as_strided costs about 10 us a call),
        sliced by ``block_windows``."""
        return make(self.x if buffer is None else buffer)

    def block_windows(self, buffer: np.ndarray | None, windows: np.ndarray, start: int,
                      stop: int) -> np.ndarray:
        """The windows of the padded examples start:stop: first pads them into buffer."""
        if buffer is None:
            return windows[start:stop]
        H, W = self.x.shape[2:]
        to_rows, from_rows = _overlap(self.top, H, self.rows)
        to_cols, from_cols = _overlap(self.left, W, self.cols)
        n = stop - start
        np.copyto(buffer[:n, :, to_rows, to_cols], self.x[start:stop, :, from_rows, from_cols])
        return windows[:n]


def _overlap(offset: int, size: int, length: int) -> tuple[slice, slice]:
    """(slice of the padded axis, slice of x's axis) where x's axis of ``size``, placed at
    ``offset`` on an axis of ``length``, lands."""
    low, high = max(0, offset), min(length, offset + size)
    return slice(low, high), slice(low - offset, high - offset)


def _padded_input(x: np.ndarray, pad: int) -> _Padded:
    """x padded by ``pad`` zeros on every side, block by block."""
    H, W = x.shape[2:]
    return _Padded(x, pad, pad, H + 2 * pad, W + 2 * pad)


def _correlate_into(out: np.ndarray, padded: _Padded, w: np.ndarray, stride: int,
                    bias: np.ndarray | None = None, kept: np.ndarray | None = None) -> None:
    """out[n] = w_flat @ im2col(n) (+ bias) for every example n, block by block.

    ``padded``: the input, padded block by block; ``w``: (F, C, HH, WW); ``bias``: (F,) or
    None; ``out``: (N, F, H_out*W_out), written. The forward pass, and dx of a stride-1
    layer with many input channels (see ``conv_backward_fast``), are this one function.
    The bias rides in the GEMM: the im2col buffer has one more row, all ones, and the
    weights one more column, the bias (one pass over the output fewer). At stride 1 the
    products come from row shifts instead of im2col (``_RowShifts``, ``_row_shift_work``).
    ``kept``: None, or an (N, C*HH*WW + 1, H_out*W_out) array to make the whole batch's
    im2col matrices in (instead of a thread's block buffer), kept for the backward pass
    (``_keeps_im2col``; needs a bias and the im2col path).
    """
    N, C = padded.x.shape[:2]
    F, _, HH, WW = w.shape
    H_out, W_out = (padded.rows - HH) // stride + 1, (padded.cols - WW) // stride + 1
    K, P = C * HH * WW, H_out * W_out
    plan = _block_size(N, K * P * out.itemsize)
    if stride == 1 and HH > 1:
        # Blocks of BLOCK_BYTES of row-shift matrix and partial products (HH times more
        # examples than of im2col): each numpy call does more, fewer GIL handoffs.
        im2col = _shifts_to_im2col(C, WW)
        plan = _block_size(N, _RowShifts.bytes_per_example(padded, HH, WW, F, out.itemsize,
                                                           im2col), K * P * out.itemsize,
                           FEW_CHANNELS_BLOCK_BYTES if im2col else None)
        _run_blocks(_row_shift_work(out, padded, w, bias, plan[0]), N, plan)
        return
    w_flat = w.reshape(F, K)
    weights = w_flat if bias is None else np.concatenate([w_flat, bias.reshape(-1, 1)], axis=1)

    def work(blocks: Iterator[tuple[int, int]]) -> None:
        im2col = _Im2colBlocks(padded, HH, WW, stride, plan[0], out.dtype,
                               ones=bias is not None, batch=kept)
        for start, stop in blocks:
            np.matmul(weights, im2col.block(start, stop), out=out[start:stop])  # (n, F, P)

    _run_blocks(work, N, plan)


class _Im2colBlocks:
    """A thread's im2col matrices of blocks of examples, (n, C*HH*WW (+ 1), P), with a
    last row of ones when ``ones`` (the bias's in the forward product, db's in dw's):
    each block padded into the thread's buffer (``_Padded``), then all its windows copied
    in one call, into the thread's own buffer or, with ``batch``, into the rows of that
    whole-batch array (the forward pass's kept matrices)."""

    def __init__(self, padded: _Padded, HH: int, WW: int, stride: int, block: int,
                 dtype: Any, ones: bool, batch: np.ndarray | None = None) -> None:
        self.batch, self.ones = batch, ones
        C = padded.x.shape[1]
        H_out, W_out = (padded.rows - HH) // stride + 1, (padded.cols - WW) // stride + 1
        self.K, self.shape = C * HH * WW, (C, HH, WW, H_out, W_out)
        if batch is None:
            self.buffer = np.empty((block, self.K + ones, H_out * W_out), dtype=dtype)
            self.buffer[:, self.K:] = 1  # the row of ones, if any: the copies skip it
        self.padded, self.pad_buffer = padded, padded.buffer(block)
        self.windows = padded.view(self.pad_buffer,
                                   lambda a: _windows(a, HH, WW, stride, H_out, W_out))

    def block(self, start: int, stop: int) -> np.ndarray:
        """The im2col matrices of examples start:stop, (n, K (+ 1), P)."""
        cols = self.buffer[:stop - start] if self.batch is None else self.batch[start:stop]
        if self.batch is not None and self.ones:
            cols[:, self.K] = 1
        views = self.padded.block_windows(self.pad_buffer, self.windows, start, stop)
        # The first K rows as (n, C, HH, WW, H_out, W_out): splitting axes always gives a
        # view, so the copy lands in the buffer. im2col, copied once.
        np.copyto(cols[:, :self.K].reshape(len(cols), *self.shape), views)
        return cols


# The forward pass keeps the batch's im2col matrices for the backward pass when they take
# at most this many times the input's memory (a strided 3x3 convolution: 9 / stride**2)
# and at most KEEP_IM2COL_BYTES (a network's caches live until its backward pass):
# dw then skips its own padding and im2col copies: at (a), interleaved, the backward took
# 0.77x the time in float32 (1.34 against 1.74 ms), 0.83x in float64 (2.32 against 2.79).
# Stride-1 layers make row shifts, not im2col (HH*WW times the input), and keep nothing.
KEEP_IM2COL = 4
KEEP_IM2COL_BYTES = 256 * 2**20


def _keeps_im2col(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: int,
                  P: int, itemsize: int) -> bool:
    """Whether the forward pass keeps its im2col matrices (see KEEP_IM2COL)."""
    N, C, H, W = x_shape
    _, _, HH, WW = w_shape
    im2col_path = stride > 1 or HH == 1
    per_example = (C * HH * WW + 1) * P
    return (im2col_path and per_example <= KEEP_IM2COL * C * H * W
            and N * per_example * itemsize <= KEEP_IM2COL_BYTES)


class _RowShifts:
    """A thread's "row-shift" matrix, the im2col matrix of a stride-1 convolution in HH
    times less memory, filled block by block.

    The im2col row of channel c and filter offset (p, q), entry i*W_out + j, is
    x_pad[c, i + p, j + q]. Copy once, for every (c, q), the padded image's rows shifted
    left by q and cut to W_out columns: S[c*WW + q, r*W_out + j] = x_pad[c, r, j + q]. The
    im2col rows of offset p are then the runs S[:, p*W_out : p*W_out + P], all with the
    same row stride: a strided view BLAS takes as it is (``offset_rows``). The copy has
    about HH times fewer inner loops than im2col's (rows of W_out, H per (c, q) instead
    of H_out per (c, p, q)). S has one more row, all ones, for the bias and db.
    """

    def __init__(self, padded: _Padded, HH: int, WW: int, block: int, dtype: Any) -> None:
        self.padded, self.HH, self.WW = padded, HH, WW
        C = padded.x.shape[1]
        self.CW, self.W_out = C * WW, padded.cols - WW + 1
        self.P = (padded.rows - HH + 1) * self.W_out
        # Zeros where a shifted row reads the padding: the copies never write there.
        self.S = np.zeros((block, self.CW + 1, padded.rows * self.W_out), dtype=dtype)
        self.S[:, self.CW] = 1
        self._rows = self.S[:, :self.CW].reshape(block, C, WW, padded.rows, self.W_out)
        x = padded.x
        H, W = x.shape[2:]
        self._to_rows, self._from_rows = _overlap(padded.top, H, padded.rows)
        # Column j of shift q is padded column j + q, x's column j + q - left.
        self._copies = [(q, *_overlap(padded.left - q, W, self.W_out)) for q in range(WW)]
        # How to fill (measured, two threads): one copy per shift q (WW numpy calls, H
        # rows of W_out values per (c, q)) at WW <= 3; wider filters take two calls, x's
        # rows widened by the column padding into a buffer, then all shifts at once (one
        # more pass over x, WW - 2 calls fewer: the calls' GIL handoffs cost more than
        # the pass). (b) 7x7, fwd + bwd 0.95x; (c) 3x3 1.03x (per shift: 0.55 ms one
        # thread, widened 0.86).
        self._widened = WW > 3
        to_cols, self._from_cols = _overlap(padded.left, W, padded.cols)
        if not self._widened:
            return
        if (to_cols, padded.cols) == (slice(0, W), W):  # no column to pad: read x itself
            self._wide = None
            source = x[:, :, self._from_rows]
        else:  # x's rows widened to padded.cols, zero margins (never written)
            rows = max(0, self._from_rows.stop - self._from_rows.start)
            self._wide = np.zeros((block, C, rows, padded.cols), dtype=dtype)
            self._to_cols = to_cols
            source = self._wide
        sN, sC, sH, sW = source.strides
        # (n, C, WW, rows, W_out): entry [n, c, q, r, j] is the widened row r at j + q.
        self._shifted = as_strided(source, (source.shape[0], C, WW, source.shape[2],
                                            self.W_out), (sN, sC, sW, sH, sW),
                                   writeable=False)

    @staticmethod
    def bytes_per_example(padded: _Padded, HH: int, WW: int, F: int, itemsize: int,
                          im2col: bool = False) -> int:
        """Bytes of one example's rows of S and of its (F, P) products or d.T, and of
        its im2col matrix when ``im2col`` (``_shifts_to_im2col``)."""
        C, W_out = padded.x.shape[1], padded.cols - WW + 1
        P = (padded.rows - HH + 1) * W_out
        return (C * WW * padded.rows * W_out + F * P
                + im2col * (C * HH * WW + 1) * P) * itemsize

    def fill(self, start: int, stop: int) -> None:
        """Copy examples start:stop into S[:stop - start] straight from x, never padded
        in rows (S's padding rows stay zero from the constructor): per shift q, the part
        of x that lands inside S's rows; or, for wide filters, x's rows widened by the
        column padding (one copy into a thread buffer, none without column padding), then
        all WW shifts in one copy. Padding each block first and then copying rows of W_out
        values per (c, q, padded row) had twice the numpy inner loops."""
        n = stop - start
        if not self._widened:
            x = self.padded.x[start:stop]
            for q, to_cols, from_cols in self._copies:
                np.copyto(self._rows[:n, :, q, self._to_rows, to_cols],
                          x[:, :, self._from_rows, from_cols])
            return
        if self._wide is None:
            source = self._shifted[start:stop]
        else:
            np.copyto(self._wide[:n, :, :, self._to_cols],
                      self.padded.x[start:stop, :, self._from_rows, self._from_cols])
            source = self._shifted[:n]
        np.copyto(self._rows[:n, :, :, self._to_rows], source)

    def all_offset_rows(self) -> np.ndarray:
        """(block, HH, C*WW + 1, P) view: ``offset_rows(p, True)`` for every p at once,
        the offsets one more axis of constant stride (W_out entries of S's rows)."""
        s_n, s_k, s_u = self.S.strides
        return as_strided(self.S, (self.S.shape[0], self.HH, self.CW + 1, self.P),
                          (s_n, self.W_out * s_u, s_k, s_u), writeable=False)

    def im2col_buffer(self) -> np.ndarray:
        """A (block, HH*C*WW + 1, P) buffer for ``copy_im2col``, its last row all ones."""
        cols = np.empty((self.S.shape[0], self.HH * self.CW + 1, self.P), dtype=self.S.dtype)
        cols[:, -1] = 1
        return cols

    def copy_im2col(self, cols: np.ndarray, n: int) -> np.ndarray:
        """The im2col matrices of the n examples in S, copied into ``cols[:n]`` (from
        ``im2col_buffer``) in one call: rows ordered (p, c, q), filter row first, as
        ``_shifts_weights`` orders the weights; the last row stays all ones."""
        np.copyto(cols[:n, :-1].reshape(n, self.HH, self.CW, self.P),
                  self.all_offset_rows()[:n, :, :self.CW])
        return cols[:n]

    def offset_rows(self, p: int, ones: bool) -> np.ndarray:
        """(block, C*WW (+ 1 with ``ones``), P) view: the im2col rows of filter row p,
        columns c*WW + q (then the row of ones)."""
        s_n, s_k, s_u = self.S.strides
        return as_strided(self.S[:, :, p * self.W_out:],
                          (self.S.shape[0], self.CW + ones, self.P), (s_n, s_k, s_u),
                          writeable=False)


def _row_shift_work(out: np.ndarray, padded: _Padded, w: np.ndarray, bias: np.ndarray | None,
                    block: int) -> Callable[[Iterator[tuple[int, int]]], None]:
    """``_correlate_into``'s blocks at stride 1 from ``_RowShifts``: out = the sum over
    filter rows p of w[:, :, p, :] (F, C*WW) @ S's rows of offset p (C*WW, P), HH products
    that together do the one im2col product's work, and HH - 1 adds of the output block.
    Returns the work for ``_run_blocks``."""
    F, C, HH, WW = w.shape
    if _shifts_to_im2col(C, WW):
        return _shifts_im2col_work(out, padded, w, bias, block)
    weights = [np.ascontiguousarray(w[:, :, p, :]).reshape(F, C * WW) for p in range(HH)]
    if bias is not None:  # a last column, against S's row of ones, in the first product
        weights[0] = np.concatenate([weights[0], bias.reshape(-1, 1)], axis=1)

    def work(blocks: Iterator[tuple[int, int]]) -> None:
        shifts = _RowShifts(padded, HH, WW, block, out.dtype)
        operands = [shifts.offset_rows(p, p == 0 and bias is not None) for p in range(HH)]
        partial = np.empty((block, F, shifts.P), dtype=out.dtype)
        for start, stop in blocks:
            n = stop - start
            shifts.fill(start, stop)
            total = out[start:stop]
            np.matmul(weights[0], operands[0][:n], out=total)
            for p in range(1, HH):
                np.matmul(weights[p], operands[p][:n], out=partial[:n])
                total += partial[:n]

    return work


# A stride-1 layer whose row-shift products have fewer than this many rows (C*WW) copies
# its row shifts into im2col matrices (HH*C*WW rows) in the forward pass: one GEMM per
# example instead of HH narrow ones and HH - 1 adds of the output. Round 12 (module
# docstring): forward 0.72x to 0.95x the time at C*WW = 5 to 21, 1.04x to 1.18x at
# 40 and 48. dw keeps the row-shift products, whose GEMMs are long (P) already.
SHIFTS_TO_IM2COL_BELOW = 32


def _shifts_to_im2col(C: int, WW: int) -> bool:
    """Whether a stride-1 layer's row shifts go into im2col matrices (see above)."""
    return C * WW < SHIFTS_TO_IM2COL_BELOW


def _shifts_weights(w: np.ndarray) -> np.ndarray:
    """w (F, C, HH, WW) as (F, HH*C*WW), columns ordered as ``copy_im2col``'s rows."""
    return w.transpose(0, 2, 1, 3).reshape(w.shape[0], -1)


def _shifts_im2col_work(out: np.ndarray, padded: _Padded, w: np.ndarray,
                        bias: np.ndarray | None, block: int
                        ) -> Callable[[Iterator[tuple[int, int]]], None]:
    """``_row_shift_work`` for few row-shift rows (``_shifts_to_im2col``): each block's
    shifts copied into im2col matrices, then one product per example, the bias against
    their row of ones (zero when there is none)."""
    F = w.shape[0]
    weights = np.concatenate([_shifts_weights(w), (np.zeros(F, dtype=w.dtype) if bias is None
                                                   else bias).reshape(-1, 1)], axis=1)

    def work(blocks: Iterator[tuple[int, int]]) -> None:
        shifts = _RowShifts(padded, w.shape[2], w.shape[3], block, out.dtype)
        cols = shifts.im2col_buffer()
        for start, stop in blocks:
            shifts.fill(start, stop)
            np.matmul(weights, shifts.copy_im2col(cols, stop - start), out=out[start:stop])

    return work


def _checked_conv_inputs(x: Any, w: Any, b: Any, conv_param: dict
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, ...]]:
    """``conv_forward_fast``'s inputs as arrays, checked (ValueError naming the one that
    does not fit), and ``(stride, pad, H_out, W_out)``."""
    x, w, b = np.asarray(x), np.asarray(w), np.asarray(b)
    expect_ndim("conv_forward_fast", "x", x, "(N, C, H, W)")
    expect_ndim("conv_forward_fast", "w", w, "(F, C, HH, WW)")
    return x, w, b, conv_geometry("conv_forward_fast", x.shape, w.shape, b.shape, conv_param)


def conv_forward_fast(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict
) -> tuple[np.ndarray, tuple]:
    """Convolution, forward pass; same inputs, output and errors as ``conv_forward_naive``.

    Inputs:
    - x: (N, C, H, W); w: (F, C, HH, WW); b: (F,); conv_param: {"stride", "pad"}.

    Returns a tuple of:
    - out: (N, F, H_out, W_out), dtype ``np.result_type(x, w, b)``.
    - cache: ``(x, w, b, conv_param)`` (the same as the naive layer's, so either backward
      pass accepts it); for strided convolutions it also carries the im2col matrices,
      which the fast backward reuses (``_ConvCache``).
    """
    x, w, b, (stride, pad, H_out, W_out) = _checked_conv_inputs(x, w, b, conv_param)
    N, F = x.shape[0], w.shape[0]
    dtype = np.result_type(x, w, b)
    out = np.empty((N, F, H_out * W_out), dtype=dtype)
    kept = None
    if _keeps_im2col(x.shape, w.shape, stride, H_out * W_out, dtype.itemsize):
        kept = np.empty((N, w[0].size + 1, H_out * W_out), dtype=dtype)
    _correlate_into(out, _padded_input(x.astype(dtype, copy=False), pad),
                    w.astype(dtype, copy=False), stride, b.astype(dtype, copy=False), kept)
    return out.reshape(N, F, H_out, W_out), _ConvCache(x, w, b, conv_param, kept)


class _ConvCache(tuple):
    """``(x, w, b, conv_param)``, the naive layer's cache (so either backward accepts it),
    that also carries ``.im2col``: the forward pass's im2col matrices with their row of
    ones, (N, C*HH*WW + 1, H_out*W_out), or None (``_keeps_im2col``)."""

    im2col: np.ndarray | None

    def __new__(cls, x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict,
                im2col: np.ndarray | None = None) -> _ConvCache:
        cache = super().__new__(cls, (x, w, b, conv_param))
        cache.im2col = im2col
        return cache

    def __getnewargs__(self) -> tuple:
        # copy and pickle make the tuple from its items, then restore .im2col.
        return tuple(self)


def conv_backward_fast(
    dout: np.ndarray, cache: tuple, *, input_grad: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Convolution, backward pass; same results as ``conv_backward_naive``.

    Inputs:
    - dout: (N, F, H_out, W_out); cache: from ``conv_forward_fast`` (or the naive forward).
    - input_grad: False skips dx, which then comes back as None: a network's first layer,
      whose input is the data, needs only dw and db (PyTorch skips it the same way for
      inputs that do not require a gradient). dx is about half of the backward's work.

    Returns a tuple of:
    - dx: (N, C, H, W), or None with ``input_grad=False``; dw: (F, C, HH, WW); db: (F,).
    """
    x, w, b, conv_param = cache
    dout = np.asarray(dout)
    stride, pad, H_out, W_out = conv_geometry("conv_backward_fast", x.shape, w.shape, b.shape,
                                              conv_param)
    N = x.shape[0]
    F, _, HH, WW = w.shape
    expect_shape("conv_backward_fast", "dout", dout, (N, F, H_out, W_out),
                  "(N, F, H_out, W_out), the shape of out")
    dtype = np.result_type(x, w, dout)
    w = w.astype(dtype, copy=False)
    dout = dout.astype(dtype, copy=False)
    kept = getattr(cache, "im2col", None)
    if kept is not None and kept.dtype != dtype:  # dout of another dtype than the forward's
        kept = None
    weight_gradient = functools.partial(
        _weight_gradient, _padded_input(x.astype(dtype, copy=False), pad), HH, WW, stride,
        dout.reshape(N, F, H_out * W_out), kept)
    if not input_grad:
        dw_flat, db = weight_gradient()
        return None, dw_flat.reshape(w.shape), db
    input_gradient = functools.partial(_input_gradient, dout, w, x.shape, stride, pad)
    if _overlaps_gradients(stride, N * w[0].size * H_out * W_out * dtype.itemsize):
        (dw_flat, db), dx = _side_by_side(weight_gradient, input_gradient)
    else:
        dw_flat, db = weight_gradient()
        dx = input_gradient()
    return dx, dw_flat.reshape(w.shape), db


# A strided layer's backward pass whose im2col work lies between these many bytes and
# INLINE_BYTES computes dw on a helper thread while the calling thread computes dx
# (``_side_by_side``). There each part would run on one thread, and the two are of
# different kinds: dw is one batched GEMM; dx by phases is mostly short elementwise
# passes, which a second thread does not speed up (round 8) but which leave the other
# core to a GEMM. At (a), float32 (2.6 MiB), fwd + bwd took 0.86x to 0.89x the time; at
# batch 50 (1.3 MiB), after a forward pass as in training, 1.02x to 1.05x: waking the
# helper and handing back its result cost about 0.1 ms. At stride 1 dx is GEMM-bound
# too, and side by side was slower (1.00x to 1.27x). Round 11 in the module docstring.
OVERLAP_BYTES = 2 * 2**20


def _overlaps_gradients(stride: int, work_bytes: int) -> bool:
    """Whether ``conv_backward_fast`` computes dw and dx side by side (OVERLAP_BYTES)."""
    return stride > 1 and WORKERS > 1 and OVERLAP_BYTES <= work_bytes <= INLINE_BYTES


def _side_by_side(helper_job: Callable[[], Any], own_job: Callable[[], Any]
                  ) -> tuple[Any, Any]:
    """``(helper_job(), own_job())``, the first on a helper thread while this thread runs
    the second, BLAS on one thread per job meanwhile (as for blocks). A helper that has
    not started by the time own_job is done (other processes hold the cores) is cancelled
    and its job run here: on a machine with one busy process beside this one, side by
    side took 1.02x to 1.07x the time of one after the other, 1.19x to 1.54x before this
    fallback."""
    with _single_threaded_blas():
        mine, ran = _beside_helpers([helper_job], own_job)
        return (ran[0].result() if ran else helper_job()), mine


def _input_gradient(dout: np.ndarray, w: np.ndarray, x_shape: tuple[int, ...], stride: int,
                    pad: int) -> np.ndarray:
    """dx of a convolution, by the method ``_input_gradient_method`` picks."""
    method = _input_gradient_method(stride, x_shape[1], w.shape[0])
    if method == "correlate":
        return _input_gradient_by_correlation(dout, w, pad)
    if method == "flat fold":
        return _input_gradient_by_flat_fold(dout, w, x_shape, pad)
    return _input_gradient_by_fold(dout, w, x_shape, stride, pad)


def _input_gradient_method(stride: int, C: int, F: int) -> str:
    """How ``conv_backward_fast`` computes dx: "correlate" (stride 1, C >= F: its GEMM is
    (C, F*HH*WW) @ (F*HH*WW, H*W), efficient once C is not small), "flat fold" (stride 1,
    fewer input channels than filters) or "fold" (any stride). The thresholds are measured:
    see the module docstring."""
    if stride != 1:
        return "fold"
    return "correlate" if C >= F else "flat fold"


def _weight_gradient(padded: _Padded, HH: int, WW: int, stride: int, d: np.ndarray,
                     kept: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """dw as (F, C*HH*WW) and db as (F,): the sums over examples of ``d[n] @ im2col(n).T``
    and of ``d[n]`` over its positions.

    ``padded``: the input, padded block by block; ``d``: dout as (N, F, P). Computed as
    dw.T = sum of ``im2col(n) @ d[n].T``, (K, P) @ (P, F): that orientation of the same
    product measured about 1.3x faster in OpenBLAS. The im2col buffer has one more row,
    all ones, as in the forward pass: the product's last row is then db (no separate
    reduction over dout). ``kept``: the forward pass's im2col matrices with their row of
    ones, or None: made again here, block by block.
    """
    N, C = padded.x.shape[:2]
    H_out, W_out = (padded.rows - HH) // stride + 1, (padded.cols - WW) // stride + 1
    F = d.shape[1]
    K, P = C * HH * WW, H_out * W_out
    plan = _block_size(N, K * P * d.itemsize)
    if stride == 1 and HH > 1:
        im2col = _shifts_to_im2col(C, WW) and F >= IM2COL_DW_FROM_FILTERS
        plan = _block_size(N, _RowShifts.bytes_per_example(padded, HH, WW, F, d.itemsize,
                                                           im2col), K * P * d.itemsize,
                           FEW_CHANNELS_BLOCK_BYTES if im2col else None)
        if im2col:
            return _weight_gradient_by_shifts_im2col(padded, HH, WW, d, plan)
        return _weight_gradient_by_row_shifts(padded, HH, WW, d, plan)

    def work(blocks: Iterator[tuple[int, int]]) -> np.ndarray:
        # The row of ones makes the product's last row db; the kept matrices have it.
        im2col = (None if kept is not None else
                  _Im2colBlocks(padded, HH, WW, stride, plan[0], d.dtype, ones=True))
        grads_t = np.zeros((K + 1, F), dtype=d.dtype)
        for start, stop in blocks:
            # (n, K + 1, P): as the forward kept them, or made again
            cols = kept[start:stop] if im2col is None else im2col.block(start, stop)
            products = np.matmul(cols, d[start:stop].transpose(0, 2, 1))
            grads_t += products.sum(axis=0)  # (n, K + 1, F) -> (K + 1, F)
        return grads_t

    grads_t = np.sum(_run_blocks(work, N, plan), axis=0)
    return grads_t[:K].T, grads_t[K]


def _weight_gradient_by_row_shifts(padded: _Padded, HH: int, WW: int, d: np.ndarray,
                                   plan: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``_weight_gradient`` at stride 1 from ``_RowShifts``: filter row p of dw is the
    sum over examples of d[n] (F, P) @ S's rows of offset p and its row of ones,
    transposed, (P, C*WW + 1); the last column of filter row 0's product is db. Or the
    transposed product, S's rows @ d[n].T, where OpenBLAS runs that one faster
    (``_filters_first``).

    One numpy matmul per block makes all n*HH products (``_RowShifts.all_offset_rows``, a
    4-D view; transposed, OpenBLAS reads it as a column-major operand, no copy), and one
    add accumulates them, example slot by example slot, into a per-thread sum. Before,
    HH products per block, each summed over the block's examples and added to the total
    (3*HH calls): at (b), two threads, dw took 0.80x the time now (5.2 against 6.6 ms);
    at (c) the same (4.8 ms). The row of ones in every filter row's product (db HH
    times, one more row or column of work) is what one matmul costs."""
    C = padded.x.shape[1]
    F, CW = d.shape[1], C * WW
    filters_first = _filters_first(F, CW + 1, d.dtype)

    def work(blocks: Iterator[tuple[int, int]]) -> np.ndarray:
        shifts = _RowShifts(padded, HH, WW, plan[0], d.dtype)
        operands = shifts.all_offset_rows()  # (block, HH, CW + 1, P)
        if filters_first:
            operands = operands.transpose(0, 1, 3, 2)  # (block, HH, P, CW + 1)
        else:
            # d[n].T made contiguous once per block for the HH products: OpenBLAS ran
            # (193, 256) @ (256, 64) 1.09x faster with it than with the transposed view.
            d_t = np.empty((plan[0], 1, shifts.P, F), dtype=d.dtype)
        shape = (plan[0], HH, F, CW + 1) if filters_first else (plan[0], HH, CW + 1, F)
        products = np.empty(shape, dtype=d.dtype)
        sums = np.zeros(shape, dtype=d.dtype)  # per example slot
        for start, stop in blocks:
            n = stop - start
            shifts.fill(start, stop)
            if filters_first:
                np.matmul(d[start:stop, None], operands[:n], out=products[:n])
            else:
                np.copyto(d_t[:n, 0], d[start:stop].transpose(0, 2, 1))
                np.matmul(operands[:n], d_t[:n], out=products[:n])
            sums[:n] += products[:n]
        return sums.sum(axis=0)

    grads = np.sum(_run_blocks(work, d.shape[0], plan), axis=0)
    if not filters_first:
        grads = grads.transpose(0, 2, 1)
    # (HH, F, C, WW) -> (F, C, HH, WW), flattened as im2col's rows.
    dw = grads[:, :, :CW].reshape(HH, F, C, WW).transpose(1, 2, 0, 3).reshape(F, C * HH * WW)
    return dw, grads[0, :, CW]


def _weight_gradient_by_shifts_im2col(padded: _Padded, HH: int, WW: int, d: np.ndarray,
                                      plan: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``_weight_gradient`` at stride 1 for few row-shift rows (``_shifts_to_im2col``, as
    the forward pass): each block's row shifts copied into im2col matrices, then dw as
    d[n] (F, P) @ im2col(n).T (P, HH*C*WW + 1), one deep product per example instead of
    HH narrow ones; its last column, against the row of ones, is db."""
    C = padded.x.shape[1]
    F, CW = d.shape[1], C * WW

    def work(blocks: Iterator[tuple[int, int]]) -> np.ndarray:
        shifts = _RowShifts(padded, HH, WW, plan[0], d.dtype)
        cols = shifts.im2col_buffer()
        products = np.empty((plan[0], F, HH * CW + 1), dtype=d.dtype)
        sums = np.zeros((plan[0], F, HH * CW + 1), dtype=d.dtype)  # per example slot
        for start, stop in blocks:
            n = stop - start
            shifts.fill(start, stop)
            im2col_t = shifts.copy_im2col(cols, n).transpose(0, 2, 1)
            np.matmul(d[start:stop], im2col_t, out=products[:n])
            sums[:n] += products[:n]
        return sums.sum(axis=0)

    grads = np.sum(_run_blocks(work, d.shape[0], plan), axis=0)  # (F, HH*CW + 1)
    # Columns (p, c, q) as _shifts_weights orders them -> (F, C, HH, WW), flattened.
    dw = grads[:, :-1].reshape(F, HH, C, WW).transpose(0, 2, 1, 3).reshape(F, C * HH * WW)
    return dw, grads[:, -1]


# dw of a stride-1 layer whose forward pass copies its row shifts into im2col matrices
# (``_shifts_to_im2col``) does the same, d[n] @ im2col(n).T, when it has at least this many
# filters: the copy costs as much whatever F, the deeper products gain in proportion to F.
# Round 15 (module docstring), two threads, interleaved: the backward took 0.87x to 0.99x
# the time with 32 filters (3 and 4 channels, 3x3 to 7x7 filters), but 1.01x to 1.14x
# with 12 or 16 filters on 2 and 8 channels (with 16 on 1 channel 0.78x to 0.95x).
IM2COL_DW_FROM_FILTERS = 32


# In float32, dw's row-shift products put the filters first, d[n] @ S's rows transposed
# (F rows by C*WW + 1 columns), only when both of those sides are at least this long;
# otherwise S's rows @ d[n].T. Round 15 (module docstring), two threads, dw alone over
# 35 stride-1 geometries: filters first took 0.42x to 0.98x the time where both sides
# were 10 or more, but up to 1.44x with 8 filters or with C*WW + 1 = 6 (OpenBLAS's
# float32 kernels on narrow operands). In float64 filters first was faster in all 35
# (0.56x to 1.00x).
FILTERS_FIRST_FROM = 10


def _filters_first(F: int, rows: int, dtype: Any) -> bool:
    """Whether dw's row-shift products are d[n] @ S's rows transposed (see above)."""
    return np.dtype(dtype) == np.float64 or min(F, rows) >= FILTERS_FIRST_FROM


def _input_gradient_by_correlation(dout: np.ndarray, w: np.ndarray, pad: int) -> np.ndarray:
    """dx of a stride-1 convolution as a convolution itself: dout, padded by the filter
    size less one, correlated with the filters flipped in both spatial axes and with C
    and F swapped, through the forward pass's products (``_correlate_into``).

    dx[n, c, h, v] = sum over f, p, q of w[f, c, p, q] * dout[n, f, h + pad - p, v + pad - q]
    """
    N, _, H_out, W_out = dout.shape
    _, C, HH, WW = w.shape
    H, W = H_out + HH - 1 - 2 * pad, W_out + WW - 1 - 2 * pad
    # dout padded by HH - 1 rows (WW - 1 columns) on each side, its first pad rows and
    # columns dropped: the windows of dx's H x W positions.
    padded = _Padded(dout, HH - 1 - pad, WW - 1 - pad, H + HH - 1, W + WW - 1)
    w_flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))  # (C, F, HH, WW)
    dx = np.empty((N, C, H * W), dtype=dout.dtype)
    _correlate_into(dx, padded, w_flipped, 1)
    return dx.reshape(N, C, H, W)


def _fold_view(dcols: np.ndarray, C: int, HH: int, WW: int, row: int, length: int,
               front: int) -> np.ndarray:
    """Read-only view A of shape (n, C, length, HH, WW) with
    A[n, c, u, p, q] = dcols[n, c*HH*WW + p*WW + q, front + u - p*row - q].

    Summing A over its last two axes adds every filter offset's slab, shifted by that
    offset in the row-major flattened padded image, in one numpy call (the col2im fold)."""
    n, _, _ = dcols.shape
    s_n, s_k, s_u = dcols.strides
    return as_strided(dcols[:, :, front:], (n, C, length, HH, WW),
                      (s_n, s_k * HH * WW, s_u, s_k * WW - row * s_u, s_k - s_u),
                      writeable=False)


def _input_gradient_by_flat_fold(dout: np.ndarray, w: np.ndarray, x_shape: tuple[int, ...],
                                 pad: int) -> np.ndarray:
    """dx of a stride-1 convolution with few input channels: the gradient of every im2col
    entry (one GEMM, ``w.T @ dout``), folded back onto the padded image in one strided sum.

    The trick that makes the fold one call: with the padded image flattened row by row
    (row length Wp), filter offset (p, q) is a shift by ``p*Wp + q``. So dout is widened
    to rows of Wp (zeros past W_out), the GEMM writes each im2col row as one flat run of
    H_out*Wp values into a zero-margined buffer, and ``_fold_view`` reads all the shifted
    runs at once. The zeros in the widened columns and in the margins stand in for the
    positions a filter offset never reaches.
    """
    N, F, H_out, W_out = dout.shape
    _, C, H, W = x_shape
    _, _, HH, WW = w.shape
    Hp, Wp = H + 2 * pad, W + 2 * pad
    K, run, image = C * HH * WW, H_out * Wp, Hp * Wp
    front = (HH - 1) * Wp + (WW - 1)  # the largest shift: margin before each run
    w_t = w.reshape(F, K).T  # (K, F)
    dx = np.empty(x_shape, dtype=dout.dtype)
    plan = _block_size(N, K * (front + image) * dout.itemsize,
                       block_bytes=FEW_CHANNELS_BLOCK_BYTES)
    block = plan[0]

    def work(blocks: Iterator[tuple[int, int]]) -> None:
        d_wide = np.zeros((block, F, H_out, Wp), dtype=dout.dtype)  # columns >= W_out stay 0
        dcols = np.zeros((block, K, front + image), dtype=dout.dtype)  # margins stay 0
        dx_flat = np.empty((block, C, image), dtype=dout.dtype)
        for start, stop in blocks:
            n = stop - start
            d_wide[:n, :, :, :W_out] = dout[start:stop]
            # (K, F) @ (n, F, run) -> the runs of dcols, (n, K, run)
            np.matmul(w_t, d_wide[:n].reshape(n, F, run), out=dcols[:n, :, front:front + run])
            np.sum(_fold_view(dcols[:n], C, HH, WW, Wp, image, front), axis=(3, 4),
                   out=dx_flat[:n])
            padded = dx_flat[:n].reshape(n, C, Hp, Wp)
            dx[start:stop] = padded[:, :, pad:pad + H, pad:pad + W]

    _run_blocks(work, N, plan)
    return dx


def _input_gradient_by_fold(dout: np.ndarray, w: np.ndarray, x_shape: tuple[int, ...],
                            stride: int, pad: int) -> np.ndarray:
    """dx of a strided convolution: by phases (``_input_gradient_by_phases``) when the
    geometry allows it (``_phase_origin``), else slab by slab."""
    origin = _phase_origin(stride, w.shape[3], pad, x_shape[3], dout.shape[3])
    if origin is None:
        return _input_gradient_by_slabs(dout, w, x_shape, stride, pad)
    return _input_gradient_by_phases(dout, w, x_shape, stride, pad, origin)


@functools.lru_cache(maxsize=256)
def _phase_origin(stride: int, WW: int, pad: int, W: int, W_out: int) -> int | None:
    """The origin o of ``_input_gradient_by_phases``'s layout (phase column j' of the
    layout is padded column stride*(j' + o) + t), or None when no o serves.

    Each phase's rows are W_out long, as the output's: a filter column q' > 0 then sends
    the last output columns past the row's end, into the start of the next row (or, with
    o > 0, columns before the row's start into the end of the previous one). An o serves
    when every column dx keeps lies inside the layout's W_out and no column that wraps
    lands on one that dx keeps (only on padding columns, cropped off)."""
    s = stride
    kept = [[j for j in range(-(-(pad - t) // s), W_out + WW) if pad <= s * j + t < pad + W]
            for t in range(s)]  # per column phase t, the phase columns dx keeps
    kept_at = [set(columns) for columns in kept]
    low = min((columns[0] for columns in kept if columns), default=0)
    high = max((columns[-1] for columns in kept if columns), default=0)
    for o in range(high - W_out + 1, low + 1):  # every kept column inside the layout
        wraps = ((c - W_out if c >= o + W_out else c + W_out, t)
                 for t in range(s) for c in range(W_out + len(range(t, WW, s)) - 1)
                 if not o <= c < o + W_out)
        if all(alias not in kept_at[t] for alias, t in wraps):
            return o
    return None


def _input_gradient_by_phases(dout: np.ndarray, w: np.ndarray, x_shape: tuple[int, ...],
                              stride: int, pad: int, origin: int) -> np.ndarray:
    """dx of a strided convolution: the gradient of every im2col entry (``w.T @ dout``,
    one GEMM), summed phase by phase in long contiguous passes.

    Phase (r, t) of the padded image holds the positions (s*i + r, s*j + t) (s the
    stride); filter offset (p, q) = (s*p' + r, s*q' + t) sends output (i, j) to phase
    position (i + p', j + q'). Laid out in rows of W_out (the output's width), starting at
    phase column ``origin``, that is a shift of the flat GEMM row by p'*W_out + q' -
    origin: each phase is the sum of its offsets' shifted runs (margins of zeros in the
    GEMM's buffer stand in for positions an offset never reaches), a few passes of H*W/s^2
    values. The phases of row phase r are written interleaved, t fastest, so each of their
    rows is s*W_out consecutive padded columns, and dx's rows are cropped from them: s*s
    sums and s crops per block. The slab adds this replaces (``_input_gradient_by_slabs``)
    make HH*WW passes of one numpy inner loop per output row (W_out values), 4 times as
    many inner loops at (a)."""
    N, F, H_out, W_out = dout.shape
    _, C, H, W = x_shape
    _, _, HH, WW = w.shape
    s, K, P = stride, C * HH * WW, H_out * W_out
    w_t = w.reshape(F, K).T
    d = dout.reshape(N, F, P)
    # Phase r's rows: up to the last padded row dx keeps.
    rows = [max(0, (pad + H - 1 - r) // s + 1) for r in range(s)]
    front = max(0, (-(-HH // s) - 1) * W_out + -(-WW // s) - 1 - origin)
    back = max(0, max(rows) * W_out + origin - P)
    dx = np.empty(x_shape, dtype=dout.dtype)
    plan = _block_size(N, K * P * dout.itemsize)
    block = plan[0]

    def work(blocks: Iterator[tuple[int, int]]) -> None:
        dcols = np.empty((block, K, front + P + back), dtype=dout.dtype)
        dcols[:, :, :front] = 0  # the margins stay zero: the GEMM writes between them
        dcols[:, :, front + P:] = 0
        layouts = [np.empty((block, C, rows[r], s * W_out), dtype=dout.dtype)
                   for r in range(s)]
        total = np.empty((block, C, max(rows) * W_out), dtype=dout.dtype)
        # For each phase: where its sum goes (a strided view of the layout, t fastest)
        # and its offsets' runs of dcols (n, C, rows*W_out).
        phases = []
        for r, t in ((r, t) for r in range(s) for t in range(s)):
            length = rows[r] * W_out
            target = layouts[r][:, :, :, t::s].reshape(block, C, length)
            # Rows and columns merge (row stride = W_out column strides): always a view,
            # never a copy that would take the sums and drop them.
            assert target.size == 0 or np.may_share_memory(target, layouts[r])
            runs = []
            for p, q in ((p, q) for p in range(r, HH, s) for q in range(t, WW, s)):
                at = front + origin - p // s * W_out - q // s
                runs.append(dcols[:, p * WW + q::HH * WW, at:at + length])
            phases.append((target, runs, total[:, :, :length]))
        crops = []  # (row phase, its first row dx keeps, dx's rows it fills)
        for r in range(s):
            first = max(0, -(-(pad - r) // s))
            crops.append((r, first, slice(s * first + r - pad, H, s)))
        cut = slice(pad - s * origin, pad - s * origin + W)
        for start, stop in blocks:
            n = stop - start
            np.matmul(w_t, d[start:stop], out=dcols[:n, :, front:front + P])
            for target, runs, sums in phases:
                _sum_runs_into(target[:n], [run[:n] for run in runs], sums[:n])
            for r, first, dx_rows in crops:
                count = len(range(H)[dx_rows])
                dx[start:stop, :, dx_rows] = layouts[r][:n, :, first:first + count, cut]

    _run_blocks(work, N, plan)
    return dx


def _sum_runs_into(target: np.ndarray, runs: list[np.ndarray], sums: np.ndarray) -> None:
    """target = the sum of runs (zeros when there are none): the adds before the last in
    the contiguous ``sums`` (adds that write the strided target took 1.5x the time), the
    last one into target (one pass fewer than copying sums there)."""
    if len(runs) < 2:
        target[...] = runs[0] if runs else 0
        return
    total = runs[0]
    for run in runs[1:-1]:
        total = np.add(total, run, out=sums)
    np.add(total, runs[-1], out=target)


def _input_gradient_by_slabs(dout: np.ndarray, w: np.ndarray, x_shape: tuple[int, ...],
                             stride: int, pad: int) -> np.ndarray:
    """dx of a strided convolution: the gradient of every im2col entry (``w.T @ dout``),
    added back window offset by window offset (HH*WW strided adds of whole slabs). For
    the geometries ``_input_gradient_by_phases`` cannot lay out."""
    N, F, H_out, W_out = dout.shape
    _, C, H, W = x_shape
    _, _, HH, WW = w.shape
    K, P = C * HH * WW, H_out * W_out
    w_t = w.reshape(F, K).T
    d = dout.reshape(N, F, P)
    rows, cols = stride * (H_out - 1) + 1, stride * (W_out - 1) + 1
    dx = np.empty(x_shape, dtype=dout.dtype)
    plan = _block_size(N, K * P * dout.itemsize)
    block = plan[0]

    def work(blocks: Iterator[tuple[int, int]]) -> None:
        dcols_buffer = np.empty((block, K, P), dtype=dout.dtype)
        dx_pad = np.empty((block, C, H + 2 * pad, W + 2 * pad), dtype=dout.dtype)
        for start, stop in blocks:
            n = stop - start
            dcols = np.matmul(w_t, d[start:stop], out=dcols_buffer[:n])  # (n, K, P)
            dcols = dcols.reshape(n, C, HH, WW, H_out, W_out)
            target = dx_pad[:n]
            target.fill(0)
            for p in range(HH):
                for q in range(WW):
                    target[:, :, p:p + rows:stride, q:q + cols:stride] += dcols[:, :, p, q]
            dx[start:stop] = target[:, :, pad:pad + H, pad:pad + W]

    _run_blocks(work, N, plan)
    return dx


# CS231n's names for its other fast conv implementations: here they are all the one above.
conv_forward_strides = conv_forward_im2col = conv_forward_fast
conv_backward_strides = conv_backward_im2col = conv_backward_fast


# ---------------------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------------------


def _column_view(x: np.ndarray, q: int, stride: int, W_out: int) -> np.ndarray:
    """x[:, :, r, j*stride + q] for every row r and output column j: a view."""
    return x[:, :, :, q:q + stride * (W_out - 1) + 1:stride]


def _row_view(x: np.ndarray, p: int, stride: int, H_out: int) -> np.ndarray:
    """x[:, :, i*stride + p, :] for every output row i: a view."""
    return x[:, :, p:p + stride * (H_out - 1) + 1:stride]


def _tiles(x: np.ndarray, ph: int, pw: int, H_out: int, W_out: int) -> np.ndarray:
    """x (n, C, H_out*ph, W_out*pw) cut into tiling windows, offsets first: a view shaped
    (n, C, ph, pw, H_out, W_out) whose [:, :, p, q, i, j] is x[:, :, i*ph + p, j*pw + q]."""
    n, C = x.shape[:2]
    return x.reshape(n, C, H_out, ph, W_out, pw).transpose(0, 1, 3, 5, 2, 4)


def _offset_dtype(count: int) -> np.dtype:
    """The smallest unsigned dtype that numbers ``count`` offsets (uint8 up to 256)."""
    return np.min_scalar_type(count - 1)


def _first_max_of(windows: list[np.ndarray], out: np.ndarray, first: np.ndarray,
                  larger: np.ndarray, step: np.ndarray) -> None:
    """``_first_max_into`` (out = the maximum of the windows, first = the number of the
    first window that holds it), with the first two windows in two numpy calls instead
    of six: first = (window 1 > window 0), that comparison's bools written straight into
    first's bytes (one-byte offsets only; two-byte ones go to ``_first_max_into``), and
    out = their maximum. 0.86x the time of ``_first_max_into`` on four windows of 42
    3x16x16 blocks, and 0.92x that with the bools multiplied as bytes."""
    if len(windows) < 2 or first.itemsize != 1:
        _first_max_into(windows, out, first, larger, step)
        return
    np.greater(windows[1], windows[0], out=first.view(np.bool_))
    np.maximum(windows[0], windows[1], out=out)
    larger_bytes = larger.view(np.uint8)  # the product then needs no cast from bool
    for offset, window in enumerate(windows[2:], 2):  # as in _first_max_into
        np.greater(window, out, out=larger)
        np.multiply(larger_bytes, first.dtype.type(offset), out=step)
        np.maximum(first, step, out=first)
        np.maximum(out, window, out=out)


class _PoolCache(tuple):
    """``(x, pool_param)``, the naive layer's cache (so either backward accepts it), that
    also carries ``.firsts``: where each window's first maximum (row-major) lies, so that
    the fast backward never reads x. Tiling windows: one array shaped like out, the
    offset p*pw + q of the first maximum. Windows that overlap or leave gaps: the column
    of the first maximum of each window row, (N, C, H, W_out), then the row of the first
    row maximum that is the window's, shaped like out."""

    firsts: tuple[np.ndarray, ...]

    def __new__(cls, x: np.ndarray, pool_param: dict,
                firsts: tuple[np.ndarray, ...] = ()) -> _PoolCache:
        cache = super().__new__(cls, (x, pool_param))
        cache.firsts = firsts
        return cache

    def __getnewargs__(self) -> tuple:
        # copy and pickle make the tuple from its items, then restore .firsts.
        return tuple(self)


def max_pool_forward_fast(x: np.ndarray, pool_param: dict) -> tuple[np.ndarray, tuple]:
    """Max pooling, forward pass; same inputs, output and errors as ``max_pool_forward_naive``.

    Inputs:
    - x: (N, C, H, W); pool_param: {"pool_height", "pool_width", "stride"}.

    Returns a tuple of:
    - out: (N, C, H_out, W_out), x's dtype.
    - cache: ``(x, pool_param)``, the naive layer's cache (either backward accepts it); it
      also carries where each window's first maximum lies, for the fast backward.
    """
    x = np.asarray(x)
    expect_ndim("max_pool_forward_fast", "x", x, "(N, C, H, W)")
    ph, pw, stride, H_out, W_out = pool_geometry("max_pool_forward_fast", x.shape, pool_param)
    N, C, H, W = x.shape
    out = np.empty((N, C, H_out, W_out), dtype=x.dtype)
    example = C * H * W * x.itemsize
    plan = _block_size(N, example)
    if stride == ph == pw:
        # Blocks of half the usual input: the offsets-first copy is as large as its
        # input, and both stay in the cache (forward 0.93x the time at 3x32x32).
        plan = _block_size(N, 2 * example, example)
        firsts: tuple[np.ndarray, ...] = (np.empty(out.shape, dtype=_offset_dtype(ph * pw)),)
        work = _tiling_forward_work(x, out, firsts[0], (ph, pw), plan[0])
    elif stride == 1:
        firsts = tuple(np.empty(x.shape, dtype=_offset_dtype(max(ph, pw))) for _ in range(2))
        work = _shifted_forward_work(x, out, firsts, (ph, pw), plan[0])
    else:
        firsts = (np.empty((N, C, H, W_out), dtype=_offset_dtype(pw)),
                  np.empty(out.shape, dtype=_offset_dtype(ph)))
        work = _separable_forward_work(x, out, firsts, (ph, pw, stride), plan[0])
    _run_blocks(work, N, plan, uses_blas=False)
    return out, _PoolCache(x, pool_param, firsts)


def _tiling_forward_work(x: np.ndarray, out: np.ndarray, first: np.ndarray,
                         window: tuple[int, int], block: int
                         ) -> Callable[[Iterator[tuple[int, int]]], None]:
    """The forward pass of tiling windows (ph, pw) = ``window``, as ``_run_blocks`` work:
    out (N, C, H_out, W_out) = each window's maximum, first = the offset p*pw + q of its
    first maximum in row-major order.

    Each block is copied into a buffer laid out (ph, pw, n, C, H_out, W_out), one
    contiguous array per offset, so that every pass of ``_first_max_of`` is one long
    numpy inner loop: on offset views of x each inner loop moves W_out strided values,
    and numpy does not vectorise comparisons of strided values."""
    _, C, H_out, W_out = out.shape
    ph, pw = window

    def work(blocks: Iterator[tuple[int, int]]) -> None:
        offsets = np.empty((ph, pw, block, C, H_out, W_out), dtype=x.dtype)
        larger = np.empty((block, C, H_out, W_out), dtype=bool)
        step = np.empty((block, C, H_out, W_out), dtype=first.dtype)
        for start, stop in blocks:
            n = stop - start
            tiles = _tiles(x[start:stop], ph, pw, H_out, W_out)  # (n, C, ph, pw, ...)
            np.copyto(offsets[:, :, :n], tiles.transpose(2, 3, 0, 1, 4, 5))
            _first_max_of([offsets[p, q, :n] for p in range(ph) for q in range(pw)],
                          out[start:stop], first[start:stop], larger[:n], step[:n])

    return work


def _separable_forward_work(x: np.ndarray, out: np.ndarray, firsts: tuple[np.ndarray, ...],
                            geometry: tuple[int, int, int], block: int
                            ) -> Callable[[Iterator[tuple[int, int]]], None]:
    """The forward pass of windows that overlap or leave gaps, geometry (ph, pw, stride),
    as ``_run_blocks`` work. Separable: the maximum of each window row (pw columns)
    first, then of ph such row maxima: (pw-1) + (ph-1) passes instead of ph*pw - 1.
    firsts = (column_first, row_first) number the first column that holds each row
    maximum and the first row whose maximum is the window's: the first maximum of the
    window in row-major order is there."""
    column_first, row_first = firsts
    _, C, H_out, W_out = out.shape
    H = x.shape[2]
    ph, pw, stride = geometry

    def work(blocks: Iterator[tuple[int, int]]) -> None:
        row_max = np.empty((block, C, H, W_out), dtype=x.dtype)
        tall = [np.empty((block, C, H, W_out), dtype=dtype)
                for dtype in (bool, column_first.dtype)]
        small = [np.empty((block, C, H_out, W_out), dtype=dtype)
                 for dtype in (bool, row_first.dtype)]
        for start, stop in blocks:
            n = stop - start
            xs, rows = x[start:stop], row_max[:n]
            _first_max_of([_column_view(xs, q, stride, W_out) for q in range(pw)], rows,
                          column_first[start:stop], *(b[:n] for b in tall))
            _first_max_of([_row_view(rows, p, stride, H_out) for p in range(ph)],
                          out[start:stop], row_first[start:stop], *(b[:n] for b in small))

    return work


def _shifted_forward_work(x: np.ndarray, out: np.ndarray, firsts: tuple[np.ndarray, ...],
                         window: tuple[int, int], block: int
                         ) -> Callable[[Iterator[tuple[int, int]]], None]:
    """The forward pass of stride-1 windows (ph, pw) = ``window`` that overlap, as
    ``_run_blocks`` work. Separable like ``_separable_forward_work``, on each block
    flattened: window column q of the row
    maxima is the block shifted by q, and window row p of the maxima is the row maxima
    shifted by p*W. Every pass is then one contiguous numpy inner loop over the whole
    block instead of one loop per image row (W_out values). The positions whose window
    would wrap past a row (the last pw-1 columns, the last ph-1 rows) get values that
    mean nothing; only out's H_out x W_out corner is copied out.

    firsts = (column_first, row_first), both shaped like x: the first column q holding
    the maximum of the pw values at (r, c..c+pw-1), and the first row p whose such row
    maximum at (i+p, j) is the window's (meaningful at i < H_out, j < W_out)."""
    column_first, row_first = firsts
    _, C, H, W = x.shape
    _, _, H_out, W_out = out.shape
    ph, pw = window
    length = block * C * H * W

    def work(blocks: Iterator[tuple[int, int]]) -> None:
        row_max, maxima = np.empty(length, dtype=x.dtype), np.empty(length, dtype=x.dtype)
        larger = np.empty(length, dtype=bool)
        step = np.empty(length, dtype=column_first.dtype)
        for start, stop in blocks:
            n = stop - start
            size = n * C * H * W
            flat = x[start:stop].reshape(size)
            along = size - (pw - 1)  # positions whose pw columns lie in the block
            _first_max_of([flat[q:q + along] for q in range(pw)], row_max[:along],
                          column_first[start:stop].reshape(size)[:along], larger[:along],
                          step[:along])
            row_max[along:size] = 0  # read by the last row shift: numbers, not garbage
            down = size - (ph - 1) * W  # positions whose ph rows lie in the block
            _first_max_of([row_max[p * W:p * W + down] for p in range(ph)], maxima[:down],
                          row_first[start:stop].reshape(size)[:down], larger[:down],
                          step[:down])
            np.copyto(out[start:stop], maxima[:size].reshape(n, C, H, W)[:, :, :H_out, :W_out])

    return work


def max_pool_backward_fast(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Max pooling, backward pass; same result as ``max_pool_backward_naive`` (ties: the
    first maximum of a window in row-major order gets the gradient).

    Inputs:
    - dout: (N, C, H_out, W_out); cache: from ``max_pool_forward_fast`` (or the naive one).

    Returns:
    - dx: (N, C, H, W).
    """
    x, pool_param = cache
    dout = np.asarray(dout)
    ph, pw, stride, H_out, W_out = pool_geometry("max_pool_backward_fast", x.shape, pool_param)
    N, C, H, W = x.shape
    expect_shape("max_pool_backward_fast", "dout", dout, (N, C, H_out, W_out),
                 "(N, C, H_out, W_out), the shape of out")
    firsts = getattr(cache, "firsts", None)
    if firsts is None:  # the naive forward's cache: find the first maxima again
        firsts = max_pool_forward_fast(x, pool_param)[1].firsts
    dtype = np.result_type(x, dout)
    plan = _block_size(N, C * H * W * x.itemsize)
    if stride == ph == pw:
        # Every pixel is in exactly one window: dx is written offset by offset, no zeroing.
        dx = np.empty(x.shape, dtype=dtype)
        work = _tiling_backward_work(dout, firsts[0], dx, (ph, pw), plan[0])
    elif stride == 1:
        dx = np.empty(x.shape, dtype=dtype)  # every entry written by _spread_to_first
        work = _shifted_backward_work(dout, firsts, dx, (ph, pw), plan[0])
    else:
        dx = np.zeros(x.shape, dtype=dtype)
        work = _separable_backward_work(dout, firsts, dx, (ph, pw, stride), plan[0])
    _run_blocks(work, N, plan, uses_blas=False)
    return dx


def _tiling_backward_work(dout: np.ndarray, first: np.ndarray, dx: np.ndarray,
                          window: tuple[int, int], block: int
                          ) -> Callable[[Iterator[tuple[int, int]]], None]:
    """dx at offset (p, q) of every tiling window = dout where that offset is the first
    maximum, else 0, as ``_run_blocks`` work: two numpy calls per offset, one of them on
    the one-byte offsets."""
    _, C, H_out, W_out = dout.shape
    ph, pw = window

    def work(blocks: Iterator[tuple[int, int]]) -> None:
        hit = np.empty((block, C, H_out, W_out), dtype=bool)
        for start, stop in blocks:
            n = stop - start
            dx_tiles = _tiles(dx[start:stop], ph, pw, H_out, W_out)
            for p in range(ph):
                for q in range(pw):
                    np.equal(first[start:stop], p * pw + q, out=hit[:n])
                    np.multiply(dout[start:stop], hit[:n], out=dx_tiles[:, :, p, q])

    return work


def _shifted_backward_work(dout: np.ndarray, firsts: tuple[np.ndarray, ...], dx: np.ndarray,
                          window: tuple[int, int], block: int
                          ) -> Callable[[Iterator[tuple[int, int]]], None]:
    """The backward pass of ``_shifted_forward_work``, as ``_run_blocks`` work (dx is
    C-contiguous: its blocks flatten to views). dout is copied into the corner of a
    block of zeros shaped like x, so the positions whose windows mean nothing carry no
    gradient; then, flattened like the forward pass, each value goes to its first
    maximum row (drow: shifts by p*W) and from there to its first maximum column
    (shifts by q), the overlaps adding up."""
    column_first, row_first = firsts
    _, C, H, W = dx.shape
    _, _, H_out, W_out = dout.shape
    ph, pw = window
    length = block * C * H * W

    def work(blocks: Iterator[tuple[int, int]]) -> None:
        padded = np.zeros((block, C, H, W), dtype=dx.dtype)  # zeros past the corner, always
        drow = np.empty(length, dtype=dx.dtype)
        hit, product = np.empty(length, dtype=bool), np.empty(length, dtype=dx.dtype)
        for start, stop in blocks:
            n = stop - start
            size = n * C * H * W
            np.copyto(padded[:n, :, :H_out, :W_out], dout[start:stop])
            _spread_to_first(padded[:n].reshape(size), row_first[start:stop].reshape(size),
                             drow[:size], W, ph, hit, product)
            _spread_to_first(drow[:size], column_first[start:stop].reshape(size),
                             dx[start:stop].reshape(size), 1, pw, hit, product)

    return work


def _spread_to_first(grad: np.ndarray, first: np.ndarray, target: np.ndarray, shift: int,
                     count: int, hit: np.ndarray, product: np.ndarray) -> None:
    """target[k + o*shift] = the sum of grad[k] over the k whose first == o (o < count),
    every array flat; grad must be 0 wherever k + (count-1)*shift is past the end.
    Offset 0 writes its part, the others add theirs: three numpy calls per offset after
    the first, one of them on one-byte offsets. ``hit`` (bool) and ``product`` (target's
    dtype): flat work buffers at least as long."""
    reach = target.size - (count - 1) * shift
    np.equal(first[:reach], 0, out=hit[:reach])
    np.multiply(grad[:reach], hit[:reach], out=target[:reach])
    target[reach:] = 0
    for offset in range(1, count):
        np.equal(first[:reach], offset, out=hit[:reach])
        np.multiply(grad[:reach], hit[:reach], out=product[:reach])
        target[offset * shift:offset * shift + reach] += product[:reach]


def _separable_backward_work(dout: np.ndarray, firsts: tuple[np.ndarray, ...], dx: np.ndarray,
                             geometry: tuple[int, int, int], block: int
                             ) -> Callable[[Iterator[tuple[int, int]]], None]:
    """The backward pass of ``_separable_forward_work``, as ``_run_blocks`` work: dout goes
    to each window's first maximum row (into drow, one value per row maximum), then drow
    to each row maximum's first column. Overlapping windows share rows and columns: the
    gradients add up (dx is zeros on entry)."""
    column_first, row_first = firsts
    _, C, H_out, W_out = dout.shape
    H = dx.shape[2]
    ph, pw, stride = geometry

    def work(blocks: Iterator[tuple[int, int]]) -> None:
        drow_buffer = np.empty((block, C, H, W_out), dtype=dx.dtype)
        small = (np.empty((block, C, H_out, W_out), dtype=bool),
                 np.empty((block, C, H_out, W_out), dtype=dx.dtype))
        tall = (np.empty((block, C, H, W_out), dtype=bool),
                np.empty((block, C, H, W_out), dtype=dx.dtype))
        for start, stop in blocks:
            n = stop - start
            drow = drow_buffer[:n]
            drow.fill(0)
            _add_where_first(dout[start:stop], row_first[start:stop],
                             [_row_view(drow, p, stride, H_out) for p in range(ph)],
                             *(b[:n] for b in small))
            _add_where_first(drow, column_first[start:stop],
                             [_column_view(dx[start:stop], q, stride, W_out)
                              for q in range(pw)], *(b[:n] for b in tall))

    return work


def _add_where_first(grad: np.ndarray, first: np.ndarray, targets: list[np.ndarray],
                     hit: np.ndarray, product: np.ndarray) -> None:
    """targets[k] += grad where first == k, for each k: three numpy calls per target.
    ``hit`` (bool) and ``product`` (grad's dtype): work buffers shaped like grad."""
    for offset, target in enumerate(targets):
        np.equal(first, offset, out=hit)
        np.multiply(grad, hit, out=product)
        target += product


# CS231n's names for its pooling variants (reshape for tiling windows, im2col otherwise):
# the layers above handle every geometry, so all names are the same pair.
max_pool_forward_reshape = max_pool_forward_im2col = max_pool_forward_fast
max_pool_backward_reshape = max_pool_backward_im2col = max_pool_backward_fast


# ---------------------------------------------------------------------------------------
# Convolution then max pooling, fused (the first layer of ThreeLayerConvNet)
# ---------------------------------------------------------------------------------------


class _ConvPoolCache(NamedTuple):
    """What ``_conv_pool_backward`` needs. Tiling pools (the fused path): the conv's cache
    ``(x, w, b, conv_param)``, pool_param, ``first``, shaped (N, Hp, Wp, F) (filters
    last, like the forward's GEMM output): the offset of each window's first maximum,
    numbered row-major within the window, and the GEMM's ``layout``; ``pool`` is None.
    Other pools (the composition of the fast layers): ``first`` and ``layout`` are None
    and ``pool`` is the pool's cache."""

    conv: tuple
    pool_param: dict
    first: np.ndarray | None
    pool: tuple | None
    layout: _FusedLayout | None = None


# The fused layer's im2col columns cover a pool window's rows at once (see
# ``_FusedLayout``) when that costs at most this much GEMM work per conv output: 8 rows
# over 7 is 1.14 (the 7x7 filters and 2x2 pools of ThreeLayerConvNet), 6 over 5 is 1.2.
PATCH_WORK = 1.2


class _FusedLayout(NamedTuple):
    """How the fused conv-pool lays out its GEMM: im2col columns of (U, WW) input patches
    on an (A, B) grid, ``row_step`` input rows and the conv's stride in columns apart,
    times weights of G columns.

    * Plain: one column per conv output, U = HH, row_step = stride, (A, B) = (H_out,
      W_out), G = F.
    * Patched: one column per pool row and conv output column: the U = HH + (size-1) *
      stride input rows that a pool window's size conv rows read together, row_step =
      size * stride, (A, B) = (Hp, W_out), and G = size * F: the weights hold the filters
      once per row offset of the window, shifted down to where that row's filter sits
      in the patch (zeros elsewhere). The GEMM does U / HH times the work (8/7 for 7x7
      filters and 2x2 pools), but its im2col holds U / (HH * size) times the values
      (0.57x: a pool's rows share their input) and its GEMM is twice as wide.

    Measured on ThreeLayerConvNet's first layer at batch 50, one thread, CPU time,
    medians of 40 (load 1, the rest of the machine busy): im2col copy 0.93-1.03 ms
    instead of 1.58-1.72 ms, GEMM 4.54-4.63 ms instead of 4.28-4.53. Patching the
    columns as well (8x8 patches, G = 4F) made the copy 1.07-1.12 ms (its inner loops
    read every other value) and the GEMM 4.75-4.83 ms (1.31x the work); patching the
    columns only, 2.07 ms and 4.58 ms. Forward + backward (``input_grad=False``) with 2x2
    pools, patched over plain, 32 filters, 32x32 inputs, CPU time, interleaved: 7x7 on 3
    channels 0.94, 5x5 on 3 and 16 channels 1.00 and 0.88, 3x3 on 3, 16 and 64 channels
    1.56, 1.03 and 1.10: PATCH_WORK lets 5x5 and larger filters be patched.
    """

    patched: bool
    U: int
    row_step: int
    A: int
    B: int
    size: int
    Hp: int
    Wp: int


def _fused_layout(HH: int, stride: int, size: int, Hp: int, Wp: int) -> _FusedLayout:
    """The patched layout when its extra GEMM work is at most PATCH_WORK, else plain."""
    U = HH + (size - 1) * stride
    if size > 1 and U <= PATCH_WORK * HH:
        return _FusedLayout(True, U, size * stride, Hp, Wp * size, size, Hp, Wp)
    return _FusedLayout(False, HH, stride, Hp * size, Wp * size, size, Hp, Wp)


def _layout_windows(x_pad: np.ndarray, WW: int, stride: int, layout: _FusedLayout
                    ) -> np.ndarray:
    """View of x_pad shaped (N, C, U, WW, A, B), the fused GEMM's im2col before the copy:
    entry [n, c, u, q, i, j] is x_pad[n, c, i*row_step + u, j*stride + q]. Read only."""
    sN, sC, sH, sW = x_pad.strides
    N, C = x_pad.shape[:2]
    return as_strided(x_pad, (N, C, layout.U, WW, layout.A, layout.B),
                      (sN, sC, sH, sW, sH * layout.row_step, sW * stride), writeable=False)


def _layout_weights(w: np.ndarray, b: np.ndarray, layout: _FusedLayout, stride: int,
                    dtype: Any) -> np.ndarray:
    """The right operand of the fused GEMM, (C*U*WW + 1, G): one column per filter (per
    filter and window row when patched), the bias in the last row."""
    F, C, HH, WW = w.shape
    w_t = w.transpose(1, 2, 3, 0)  # (C, HH, WW, F)
    if not layout.patched:
        kernel, bias = w_t.reshape(-1, F), b
    else:
        patch = np.zeros((C, layout.U, WW, layout.size, F), dtype=dtype)
        for r in range(layout.size):
            patch[:, r * stride:r * stride + HH, :, r] = w_t
        kernel, bias = patch.reshape(C * layout.U * WW, -1), np.tile(b, layout.size)
    return np.concatenate([kernel, bias.reshape(1, -1)]).astype(dtype, copy=False)


def _layout_gradients(grads_t: np.ndarray, w_shape: tuple[int, ...], layout: _FusedLayout,
                      stride: int) -> tuple[np.ndarray, np.ndarray]:
    """dw (F, C, HH, WW) and db (F,) from the gradient of ``_layout_weights``' matrix: a
    patched layout's copies of each filter (one per window row) add up."""
    F, C, HH, WW = w_shape
    K = grads_t.shape[0] - 1
    if not layout.patched:
        return grads_t[:K].T.reshape(w_shape), grads_t[K]
    patch = grads_t[:K].reshape(C, layout.U, WW, layout.size, F)
    dw_t = np.zeros((C, HH, WW, F), dtype=grads_t.dtype)
    for r in range(layout.size):
        dw_t += patch[:, r * stride:r * stride + HH, :, r]
    return dw_t.transpose(3, 0, 1, 2).copy(), grads_t[K].reshape(layout.size, F).sum(axis=0)


def _conv_tiles(block: np.ndarray, layout: _FusedLayout) -> np.ndarray:
    """A view (n, Hp, size, Wp, size, F) of a block of conv output (or of its gradient)
    laid out as the fused GEMM writes it, (n, A*B, G): entry [m, i, r, j, s, f] is filter
    f's output at row i*size + r, column j*size + s of example m."""
    n, size, Hp, Wp = block.shape[0], layout.size, layout.Hp, layout.Wp
    if layout.patched:  # (n, Hp, W_out, size * F): the window row r is in the last axis
        return block.reshape(n, Hp, Wp, size, size, -1).transpose(0, 1, 4, 2, 3, 5)
    return block.reshape(n, Hp, size, Wp, size, -1)


def _first_max_into(windows: list[np.ndarray], out: np.ndarray, first: np.ndarray,
                    larger: np.ndarray, step: np.ndarray) -> None:
    """out = the elementwise maximum of ``windows`` (one view per offset, row-major) and
    first = the number of the first offset that holds it: a later offset takes over only
    when strictly larger, the naive layer's tie rule. ``larger`` (bool) and ``step``
    (first's dtype): work buffers shaped like out.

    Offsets come in increasing order, so ``first = max(first, offset * larger)``: two
    branch-free passes. ``np.copyto(first, offset, where=larger)`` took 8x as long (240
    vs 30 us per offset on 8 post-ReLU examples of 32x32x32: a mask of random values
    defeats the branch predictor)."""
    np.copyto(out, windows[0])
    first.fill(0)
    for offset, window in enumerate(windows[1:], 1):
        np.greater(window, out, out=larger)
        np.multiply(larger, first.dtype.type(offset), out=step)
        np.maximum(first, step, out=first)
        np.maximum(out, window, out=out)


def _conv_pool_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict,
                       pool_param: dict) -> tuple[np.ndarray, _ConvPoolCache]:
    """``max_pool_forward_fast(conv_forward_fast(x, w, b, conv_param)[0], pool_param)``
    with its own cache, for ``conv_relu_pool_forward``.

    Tiling pools (stride = pool_height = pool_width) are fused: each block's conv output
    is pooled while it is still in the cache, so the whole conv output is never written;
    the cache keeps the offset of each window's first maximum instead. The block's GEMM
    is the transposed one, ``im2col.T @ weights`` (see ``_FusedLayout``), whose output
    (positions, filters) puts the filters last: the pool's offset views then read runs
    of F contiguous values instead of every other value of a row."""
    x, w, b, (stride, pad, H_out, W_out) = _checked_conv_inputs(x, w, b, conv_param)
    N, C = x.shape[:2]
    F, _, HH, WW = w.shape
    ph, pw, size, Hp, Wp = pool_geometry("max_pool_forward_fast", (N, F, H_out, W_out),
                                         pool_param)
    if not size == ph == pw:
        a, conv_cache = conv_forward_fast(x, w, b, conv_param)
        pooled, pool_cache = max_pool_forward_fast(a, pool_param)
        return pooled, _ConvPoolCache(conv_cache, pool_param, None, pool_cache)
    dtype = np.result_type(x, w, b)
    layout = _fused_layout(HH, stride, size, Hp, Wp)
    U, A, B = layout.U, layout.A, layout.B
    views = _layout_windows(_pad(x.astype(dtype, copy=False), pad), WW, stride, layout)
    weights = _layout_weights(w, b, layout, stride, dtype)
    pooled = np.empty((N, F, Hp, Wp), dtype=dtype)
    first = np.empty((N, Hp, Wp, F), dtype=np.min_scalar_type(size * size - 1))
    K, P, G = C * U * WW, A * B, weights.shape[1]
    # Blocks of about 2 * BLOCK_BYTES of conv output (16 examples of 32x32x32 float32;
    # the VM's L2 holds 2 MiB per core), made chunk by chunk of im2col that stay in the
    # cache. The pool's numpy calls on a block are short, and two threads' short calls
    # wait for each other's GIL handoffs: blocks of 16 took 0.96x to 0.98x the forward's
    # time of blocks of 8, and blocks of 4 took 1.06x (interleaved, load 0.2).
    plan = _block_size(N, G * P * dtype.itemsize // 2, (K + 1) * P * dtype.itemsize)
    group = plan[0]
    chunk = min(group, _block_size(N, (K + 1) * P * dtype.itemsize)[0])

    def work(blocks: Iterator[tuple[int, int]]) -> None:
        cols = np.empty((chunk, K + 1, P), dtype=dtype)
        cols[:, K] = 1  # the bias row
        windows = cols[:, :K].reshape(chunk, C, U, WW, A, B)
        conv = np.empty((group, P, G), dtype=dtype)
        maxima = np.empty((group, Hp, Wp, F), dtype=dtype)
        larger = np.empty((group, Hp, Wp, F), dtype=bool)
        step = np.empty((group, Hp, Wp, F), dtype=first.dtype)
        for start, stop in blocks:
            n = stop - start
            for low in range(start, stop, chunk):
                high = min(stop, low + chunk)
                np.copyto(windows[:high - low], views[low:high])
                np.matmul(cols[:high - low].transpose(0, 2, 1), weights,
                          out=conv[low - start:high - start])
            tiles = _conv_tiles(conv[:n], layout)
            _first_max_of([tiles[:, :, r, :, s] for r in range(size) for s in range(size)],
                          maxima[:n], first[start:stop], larger[:n], step[:n])
            np.copyto(pooled[start:stop], maxima[:n].transpose(0, 3, 1, 2))

    _run_blocks(work, N, plan)
    return pooled, _ConvPoolCache((x, w, b, conv_param), pool_param, first, None, layout)


def _conv_pool_backward(dpooled: np.ndarray, cache: _ConvPoolCache, input_grad: bool = True
                        ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """dx (None without ``input_grad``), dw, db of ``_conv_pool_forward`` given the
    gradient of its pooled output.

    Tiling pools: the gradient of the conv output at pool offset o is
    ``dpooled * (first == o)``; made block by block, laid out (positions, G) like the
    forward's GEMM output, it is the right operand of ``im2col @ g`` (the orientation
    ``_weight_gradient`` measured fastest, here without a transposed operand). The conv
    output's whole gradient is made only when dx is asked for."""
    if cache.first is None or cache.layout is None:
        da = max_pool_backward_fast(dpooled, cache.pool)
        return conv_backward_fast(da, cache.conv, input_grad=input_grad)
    x, w, b, conv_param = cache.conv
    first, layout = cache.first, cache.layout
    N, Hp, Wp, F = first.shape
    dpooled = np.asarray(dpooled)
    expect_shape("max_pool_backward_fast", "dout", dpooled, (N, F, Hp, Wp),
                 "(N, C, H_out, W_out), the shape of out")
    stride, pad, H_out, W_out = conv_geometry("conv_backward_fast", x.shape, w.shape, b.shape,
                                              conv_param)
    dtype = np.result_type(x, w, dpooled)
    views = _layout_windows(_pad(x.astype(dtype, copy=False), pad), w.shape[3], stride,
                            layout)
    da = np.empty((N, F, H_out, W_out), dtype=dtype) if input_grad else None
    grads_t = _pooled_weight_gradient(views, dpooled.astype(dtype, copy=False), first,
                                      layout, da)
    dw, db = _layout_gradients(grads_t, w.shape, layout, stride)
    if da is None:
        return None, dw, db
    return _input_gradient(da, w.astype(dtype, copy=False), x.shape, stride, pad), dw, db


def _pooled_weight_gradient(views: np.ndarray, dpooled: np.ndarray, first: np.ndarray,
                            layout: _FusedLayout, da: np.ndarray | None) -> np.ndarray:
    """The gradient of the fused GEMM's weights, (K + 1, G) as ``_layout_weights`` lays
    them out (``_layout_gradients`` turns it into dw and db), from the pooled gradient
    ``dpooled`` (N, F, Hp, Wp) and the forward's ``first`` (N, Hp, Wp, F). When ``da``
    (N, F, H_out, W_out) is given, the conv output's gradient is written there too.

    Like the forward pass, blocks of conv output gradient that stay in the cache (made
    in two numpy calls: which offset each value is, times dpooled), then chunks of im2col
    that do: few, long numpy calls, so that two threads seldom wait for the GIL.
    """
    N, C, U, WW, A, B = views.shape
    _, Hp, Wp, F = first.shape
    size = layout.size
    K, P, G = C * U * WW, A * B, size * F if layout.patched else F
    item = dpooled.itemsize
    plan = _block_size(N, G * P * item, (K + 1) * P * item)
    group = plan[0]
    chunk = min(group, _block_size(N, (K + 1) * P * item)[0])
    # The number of offset (r, s) of a window, broadcast against first's tiles.
    offsets = np.arange(size * size, dtype=first.dtype).reshape(1, 1, size, 1, size, 1)

    def work(blocks: Iterator[tuple[int, int]]) -> np.ndarray:
        cols = np.empty((chunk, K + 1, P), dtype=dpooled.dtype)
        cols[:, K] = 1  # the row whose product with g is the bias's gradient
        windows = cols[:, :K].reshape(chunk, C, U, WW, A, B)
        g = np.empty((group, P, G), dtype=dpooled.dtype)
        dpooled_t = np.empty((group, Hp, Wp, F), dtype=dpooled.dtype)
        hit = np.empty((group, P, G), dtype=bool)
        grads_t = np.zeros((K + 1, G), dtype=dpooled.dtype)
        for start, stop in blocks:
            n = stop - start
            np.copyto(dpooled_t[:n], dpooled[start:stop].transpose(0, 2, 3, 1))
            per_window = (n, Hp, 1, Wp, 1, F)
            hit_tiles, g_tiles = _conv_tiles(hit[:n], layout), _conv_tiles(g[:n], layout)
            np.equal(first[start:stop].reshape(per_window), offsets, out=hit_tiles)
            np.multiply(dpooled_t[:n].reshape(per_window), hit_tiles, out=g_tiles)
            if da is not None:
                np.copyto(da[start:stop].reshape(n, F, Hp, size, Wp, size),
                          g_tiles.transpose(0, 5, 1, 2, 3, 4))
            for low in range(start, stop, chunk):
                high = min(stop, low + chunk)
                np.copyto(windows[:high - low], views[low:high])
                products = np.matmul(cols[:high - low], g[low - start:high - start])
                grads_t += products.sum(axis=0)  # (m, K + 1, G) -> (K + 1, G)
        return grads_t

    return np.sum(_run_blocks(work, N, plan), axis=0)
