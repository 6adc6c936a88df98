//! Batched population evaluation against the per-individual reference loop, for both GAN
//! modes: generators forward on shared latents, then the discriminator on every fake, with
//! the outputs checked equal. Run by `scripts/bench-gan.sh`.
//!
//! Arguments: `P` (population, 32), `B` (fakes per individual, 16), `WIDTH` (dcgan base
//! channels at 28x28, 32), `WIDTH64` (at 64x64, 16; the thesis has 64), `REPS` (5), `DEVICE`
//! (cpu) as environment variables.
use neuroevo::gan::{dcgan, weights};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

fn env(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Median seconds of `reps` runs of `f` (after one warm-up run).
fn time(reps: i64, device: Device, mut f: impl FnMut() -> Tensor) -> (f64, Tensor) {
    let mut out = f();
    let mut ts = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        out = f();
        if let Device::Cuda(_) = device {
            tch::Cuda::synchronize(0);
        }
        ts.push(t.elapsed().as_secs_f64());
    }
    ts.sort_by(f64::total_cmp);
    (ts[ts.len() / 2], out)
}

/// Largest difference between two outputs, relative to the largest output.
fn rel_diff(a: &Tensor, b: &Tensor) -> f64 {
    let d = (a - b).abs().max().double_value(&[]);
    d / b.abs().max().double_value(&[]).max(1e-30)
}

/// Times `batched` and `looped` (each `(g, d, z) -> outputs`) on the float32 inputs and prints
/// one row; both also run once on the same inputs in float64, where no library takes shortcuts
/// (on CUDA, cuDNN computes float32 convolutions in TF32 by default, so float32 outputs of a
/// grouped convolution and of P single ones differ by ~1e-3).
fn compare(
    name: &str,
    p: i64,
    reps: i64,
    device: Device,
    (g, d, z): (&Tensor, &Tensor, &Tensor),
    batched: impl Fn(&Tensor, &Tensor, &Tensor) -> Tensor,
    looped: impl Fn(&Tensor, &Tensor, &Tensor) -> Tensor,
) {
    let (tb, ob) = time(reps, device, || batched(g, d, z));
    let (tl, ol) = time(reps, device, || looped(g, d, z));
    let f64s = [g, d, z].map(|t| t.to_kind(Kind::Double));
    let [g64, d64, z64] = &f64s;
    let f32_diff = rel_diff(&ob, &ol);
    let f64_diff = rel_diff(&batched(g64, d64, z64), &looped(g64, d64, z64));
    println!(
        "{name:<34} P={p:<3} batched {:>8.2} ms  loop {:>8.2} ms  speed-up {:>5.1}x  max rel diff f32 {f32_diff:.1e}, f64 {f64_diff:.1e}{}",
        tb * 1e3,
        tl * 1e3,
        tl / tb,
        if f64_diff < 1e-9 { " (equal)" } else { " (DIFFERENT)" }
    );
}

fn main() {
    neuroevo::device::tune_allocator();
    let p = env("P", 32);
    let b = env("B", 16);
    let width = env("WIDTH", 32);
    let width64 = env("WIDTH64", 16);
    let reps = env("REPS", 5);
    let device = match std::env::var("DEVICE").as_deref() {
        Ok("cuda") => Device::Cuda(0),
        _ => Device::Cpu,
    };
    tch::manual_seed(1);
    let _g = tch::no_grad_guard();
    println!(
        "device {device:?}, {} threads; P = {p}, {b} fakes per individual",
        tch::get_num_threads()
    );

    // weights mode: MLP 100-100-784 generators (bmm) + the conv discriminator on all fakes
    let gl = weights::generator_layout(100, &[100], 784);
    let g = weights::init_generators(&gl, p, device);
    let dl = weights::d_layout([1, 28, 28], 64, false);
    let d = weights::init_discriminator(&dl, device);
    let z = Tensor::randn([b, 100], (Kind::Float, device));
    compare(
        "weights: G (bmm) + D",
        p,
        reps,
        device,
        (&g, &d, &z),
        |g, d, z| {
            let x = weights::g_forward_batched(&gl, weights::Act::Sigmoid, g, z)
                .reshape([-1, 1, 28, 28]);
            weights::d_forward(&dl, d, &x, false, b).view([p, b])
        },
        |g, d, z| {
            let outs: Vec<Tensor> = (0..p)
                .map(|i| {
                    let x =
                        weights::g_forward_one(&gl, weights::Act::Sigmoid, &g.narrow(0, i, 1), z)
                            .reshape([-1, 1, 28, 28]);
                    weights::d_forward(&dl, d, &x, false, b)
                })
                .collect();
            Tensor::stack(&outs, 0)
        },
    );

    // dcgan mode at 28x28: P generators (grouped transposed convs) + P discriminators
    // (grouped convs), generator i judged by discriminator i
    for (size, c) in [(28, 1), (64, 3)] {
        let w = if size == 64 { width64 } else { width };
        let gs = dcgan::generator_specs(size, c, w, 128).unwrap();
        let ds = dcgan::discriminator_specs(size, c, w).unwrap();
        let (gl, dl) = (dcgan::layout(&gs, true), dcgan::layout(&ds, false));
        let g = dcgan::init(&gl, p, device);
        let d = dcgan::init(&dl, p, device);
        let z = Tensor::randn([b, 128], (Kind::Float, device));
        compare(
            &format!("dcgan {size}x{size}x{c} width {w}: G + D"),
            p,
            reps,
            device,
            (&g, &d, &z),
            |g, d, z| dcgan::d_forward(&dl, &ds, d, &dcgan::g_forward(&gl, &gs, g, z)),
            |g, d, z| dcgan::d_forward_loop(&dl, &ds, d, &dcgan::g_forward_loop(&gl, &gs, g, z)),
        );
    }
}
