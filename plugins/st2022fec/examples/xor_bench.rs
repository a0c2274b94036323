// SPDX-License-Identifier: MPL-2.0
//! Throughput of the ST 2022-1 XOR kernel on one core.
//!
//! `cargo run --release -p gst-plugin-st2022fec --example xor_bench`
//!
//! GB/s counts the bytes of the source buffer XORed into the destination
//! (10^9 bytes per second). `xor_into_both` (one source into two
//! accumulators, what the encoder does per media packet) counts the source
//! once.
//!
//! The last two lines run `xor_into_both` on 1316 bytes with both
//! accumulators on a 64-byte (cache-line) boundary, where the encoder keeps
//! them, and 28 bytes past one, where the payload of a FEC packet built in
//! place after its 28 header bytes would be: there half of the 32-byte
//! stores split a cache line.

use std::hint::black_box;
use std::time::{Duration, Instant};

use gstst2022fec::fec::{xor_into, xor_into_both};

fn measure(mut f: impl FnMut(), bytes_per_call: usize) -> f64 {
    // Warm up, then run for about 0.5 s.
    for _ in 0..1000 {
        f();
    }
    let mut calls = 0u64;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(500) {
        for _ in 0..1000 {
            f();
        }
        calls += 1000;
    }
    let secs = start.elapsed().as_secs_f64();
    calls as f64 * bytes_per_call as f64 / secs / 1e9
}

/// A source buffer of `size` bytes that is not all one value.
fn source(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 31 + 7) as u8).collect()
}

fn main() {
    println!("{:<40} {:>10}", "kernel / buffer", "GB/s");
    for size in [188usize, 1316, 64 * 1024] {
        let src = source(size);
        let mut dst = vec![0x5au8; size];
        let mut dst2 = vec![0xa5u8; size];
        let single = measure(|| xor_into(black_box(&mut dst), black_box(&src)), size);
        let both = measure(
            || xor_into_both(black_box(&mut dst), black_box(&mut dst2), black_box(&src)),
            size,
        );
        println!("{:<40} {:>10.1}", format!("xor_into {size} B"), single);
        println!("{:<40} {:>10.1}", format!("xor_into_both {size} B"), both);
        black_box((&dst, &dst2));
    }
    let size = 1316;
    let src = source(size);
    for (name, skew) in [("64-aligned", 0usize), ("at +28", 28)] {
        let mut a = vec![0x5au8; size + 128];
        let mut b = vec![0xa5u8; size + 128];
        let at = |v: &[u8]| {
            let addr = v.as_ptr() as usize;
            addr.next_multiple_of(64) - addr + skew
        };
        let (oa, ob) = (at(&a), at(&b));
        let (a, b) = (&mut a[oa..oa + size], &mut b[ob..ob + size]);
        let gbs = measure(
            || xor_into_both(black_box(&mut *a), black_box(&mut *b), black_box(&src)),
            size,
        );
        println!(
            "{:<40} {:>10.1}",
            format!("xor_into_both {size} B, acc {name}"),
            gbs
        );
    }
}
