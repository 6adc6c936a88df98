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

/// `exact`: the two versions' outputs on the same inputs in float64, where no library takes
/// shortcuts (on CUDA, cuDNN computes float32 convolutions in TF32 by default, so float32
/// outputs of a grouped convolution and of P single ones differ by ~1e-3).
fn row(name: &str, p: i64, batched: (f64, Tensor), looped: (f64, Tensor), exact: (Tensor, Tensor)) {
    let f32_diff = rel_diff(&batched.1, &looped.1);
    let f64_diff = rel_diff(&exact.0, &exact.1);
    println!(
        "{name:<34} P={p:<3} batched {:>8.2} ms  loop {:>8.2} ms  speed-up {:>5.1}x  max rel diff f32 {f32_diff:.1e}, f64 {f64_diff:.1e}{}",
        batched.0 * 1e3,
        looped.0 * 1e3,
        looped.0 / batched.0,
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
    let batched = time(reps, device, || {
        let x = weights::g_forward_batched(&gl, &g, &z).reshape([-1, 1, 28, 28]);
        weights::d_forward(&dl, &d, &x, false, b).view([p, b])
    });
    let looped_fn = |g: &Tensor, d: &Tensor, z: &Tensor| {
        let outs: Vec<Tensor> = (0..p)
            .map(|i| {
                let x = weights::g_forward_one(&gl, &g.narrow(0, i, 1), z).reshape([-1, 1, 28, 28]);
                weights::d_forward(&dl, d, &x, false, b)
            })
            .collect();
        Tensor::stack(&outs, 0)
    };
    let looped = time(reps, device, || looped_fn(&g, &d, &z));
    let (g64, d64, z64) = (
        g.to_kind(Kind::Double),
        d.to_kind(Kind::Double),
        z.to_kind(Kind::Double),
    );
    let exact = (
        weights::d_forward(
            &dl,
            &d64,
            &weights::g_forward_batched(&gl, &g64, &z64).reshape([-1, 1, 28, 28]),
            false,
            b,
        )
        .view([p, b]),
        looped_fn(&g64, &d64, &z64),
    );
    row("weights: G (bmm) + D", p, batched, looped, exact);

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
        let batched = time(reps, device, || {
            let x = dcgan::g_forward(&gl, &gs, &g, &z);
            dcgan::d_forward(&dl, &ds, &d, &x)
        });
        let looped = time(reps, device, || {
            let x = dcgan::g_forward_loop(&gl, &gs, &g, &z);
            dcgan::d_forward_loop(&dl, &ds, &d, &x)
        });
        let (g64, d64, z64) = (
            g.to_kind(Kind::Double),
            d.to_kind(Kind::Double),
            z.to_kind(Kind::Double),
        );
        let exact = (
            dcgan::d_forward(&dl, &ds, &d64, &dcgan::g_forward(&gl, &gs, &g64, &z64)),
            dcgan::d_forward_loop(&dl, &ds, &d64, &dcgan::g_forward_loop(&gl, &gs, &g64, &z64)),
        );
        row(
            &format!("dcgan {size}x{size}x{c} width {w}: G + D"),
            p,
            batched,
            looped,
            exact,
        );
    }
}
