// SPDX-License-Identifier: MPL-2.0
//! The XOR ("parity") kernel of SMPTE ST 2022-1 clause 7 / RFC 2733 section 4:
//! every FEC payload is the bytewise exclusive-or of the protected packets,
//! each zero-padded to the longest.
//!
//! The loops work on 64-byte blocks of fixed-size arrays, which the compiler
//! turns into SIMD loads, XORs and stores (SSE2 on every x86-64). On x86-64
//! the same loop is also compiled with AVX2 enabled and chosen at run time
//! when the CPU has it, without nightly features or `unsafe` intrinsics.

/// Block size of the unrolled loop, in bytes.
const BLOCK: usize = 64;

/// `dst[i] ^= src[i]` for `i < min(dst.len(), src.len())`.
///
/// Bytes of the longer slice beyond the shorter one are untouched, which is
/// exactly the zero-padding rule of RFC 2733 section 4 when `dst` is the
/// longer (accumulator) buffer.
#[inline]
pub fn xor_into(dst: &mut [u8], src: &[u8]) {
    let n = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    #[cfg(target_arch = "x86_64")]
    {
        if n >= BLOCK && std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { xor_avx2(dst, src) };
            return;
        }
    }
    xor_blocks(dst, src);
}

/// `a[i] ^= src[i]` and `b[i] ^= src[i]` for `i < min` of the three lengths,
/// reading `src` once: the encoder adds every media packet to one row and
/// one column accumulator.
#[inline]
pub fn xor_into_both(a: &mut [u8], b: &mut [u8], src: &[u8]) {
    let n = a.len().min(b.len()).min(src.len());
    let (a, b, src) = (&mut a[..n], &mut b[..n], &src[..n]);
    #[cfg(target_arch = "x86_64")]
    {
        if n >= BLOCK && std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { xor_both_avx2(a, b, src) };
            return;
        }
    }
    xor_both_blocks(a, b, src);
}

/// Portable kernel: callers pass slices of equal length.
#[inline(always)]
fn xor_blocks(dst: &mut [u8], src: &[u8]) {
    debug_assert_eq!(dst.len(), src.len());
    let (dst_blocks, dst_tail) = dst.as_chunks_mut::<BLOCK>();
    let (src_blocks, src_tail) = src.as_chunks::<BLOCK>();
    for (d, s) in dst_blocks.iter_mut().zip(src_blocks) {
        for i in 0..BLOCK {
            d[i] ^= s[i];
        }
    }
    for (d, s) in dst_tail.iter_mut().zip(src_tail) {
        *d ^= *s;
    }
}

#[inline(always)]
fn xor_both_blocks(a: &mut [u8], b: &mut [u8], src: &[u8]) {
    debug_assert!(a.len() == src.len() && b.len() == src.len());
    let (a_blocks, a_tail) = a.as_chunks_mut::<BLOCK>();
    let (b_blocks, b_tail) = b.as_chunks_mut::<BLOCK>();
    let (src_blocks, src_tail) = src.as_chunks::<BLOCK>();
    for ((x, y), s) in a_blocks.iter_mut().zip(b_blocks).zip(src_blocks) {
        for i in 0..BLOCK {
            x[i] ^= s[i];
            y[i] ^= s[i];
        }
    }
    for ((x, y), s) in a_tail.iter_mut().zip(b_tail).zip(src_tail) {
        *x ^= *s;
        *y ^= *s;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn xor_avx2(dst: &mut [u8], src: &[u8]) {
    xor_blocks(dst, src)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn xor_both_avx2(a: &mut [u8], b: &mut [u8], src: &[u8]) {
    xor_both_blocks(a, b, src)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(dst: &mut [u8], src: &[u8]) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d ^= s;
        }
    }

    #[test]
    fn matches_bytewise_reference_for_all_lengths_and_offsets() {
        let src: Vec<u8> = (0..700u32).map(|i| (i * 131 + 7) as u8).collect();
        for len in 0..300 {
            for off in 0..3 {
                let mut a: Vec<u8> = (0..len + off).map(|i| (i * 17) as u8).collect();
                let mut b = a.clone();
                xor_into(&mut a[off..], &src[..len]);
                reference(&mut b[off..], &src[..len]);
                assert_eq!(a, b, "len {len} off {off}");
            }
        }
    }

    #[test]
    fn shorter_source_leaves_the_rest_untouched() {
        let mut dst = vec![0xAAu8; 200];
        xor_into(&mut dst, &[0xFF; 130]);
        assert!(dst[..130].iter().all(|&b| b == 0x55));
        assert!(dst[130..].iter().all(|&b| b == 0xAA));
        // Shorter destination: only its bytes change.
        let mut dst = vec![0u8; 10];
        xor_into(&mut dst, &[1; 100]);
        assert_eq!(dst, vec![1; 10]);
    }

    #[test]
    fn both_matches_two_single_calls() {
        let src: Vec<u8> = (0..1316u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in [0usize, 1, 63, 64, 65, 188, 1316] {
            let mut a: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut b: Vec<u8> = (0..len).map(|i| (i * 3) as u8).collect();
            let (mut ra, mut rb) = (a.clone(), b.clone());
            xor_into_both(&mut a, &mut b, &src[..len]);
            reference(&mut ra, &src[..len]);
            reference(&mut rb, &src[..len]);
            assert_eq!((a, b), (ra, rb));
        }
    }
}
