//! The signature of a payment provider's callback, shaped like the ones real providers send
//! (Stripe's `Stripe-Signature`, for one): a header `t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>">` under the webhook secret both sides share. The timestamp is signed too and
//! must be recent, so a captured callback cannot be replayed later; the tag is compared in
//! constant time.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub use contracts::order::SIGNATURE_HEADER;

/// How old a signed callback may be.
pub const TOLERANCE_SECS: i64 = 300;

/// Why a signature was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadSignature {
    /// Not `t=...,v1=...`.
    #[error("malformed signature header")]
    Malformed,
    /// Signed more than [`TOLERANCE_SECS`] away from now.
    #[error("signature timestamp outside the tolerance")]
    Stale,
    /// The tag does not match the body under our secret.
    #[error("signature does not match")]
    Mismatch,
}

fn mac(secret: &[u8], at: i64, payload: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(at.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

/// The signature header for `payload` signed at `at` (unix seconds).
pub fn sign(secret: &[u8], payload: &[u8], at: i64) -> String {
    let tag = mac(secret, at, payload).finalize().into_bytes();
    let hex: String = tag.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("t={at},v1={hex}")
}

/// Checks `header` against `payload` as of `now` (unix seconds).
pub fn verify(secret: &[u8], payload: &[u8], header: &str, now: i64) -> Result<(), BadSignature> {
    let (mut at, mut tag) = (None, None);
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => at = value.parse::<i64>().ok(),
            Some(("v1", value)) => tag = decode_hex(value),
            _ => {}
        }
    }
    let (Some(at), Some(tag)) = (at, tag) else { return Err(BadSignature::Malformed) };
    if (now - at).abs() > TOLERANCE_SECS {
        return Err(BadSignature::Stale);
    }
    mac(secret, at, payload).verify_slice(&tag).map_err(|_| BadSignature::Mismatch)
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || text.len() > 128 {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_payload_verifies_and_any_change_is_refused() {
        let (secret, body, now) = (b"webhook-secret".as_slice(), br#"{"type":"payment.succeeded"}"#, 1_700_000_000);
        let header = sign(secret, body, now);
        assert_eq!(verify(secret, body, &header, now + 10), Ok(()));
        assert_eq!(verify(secret, br#"{"type":"payment.failed"}"#, &header, now), Err(BadSignature::Mismatch));
        assert_eq!(verify(b"another-secret", body, &header, now), Err(BadSignature::Mismatch));
        assert_eq!(verify(secret, body, &header, now + TOLERANCE_SECS + 1), Err(BadSignature::Stale));
        // The timestamp is signed: moving it forward breaks the tag.
        let replayed = header.replacen(&format!("t={now}"), &format!("t={}", now + 400), 1);
        assert_eq!(verify(secret, body, &replayed, now + 400), Err(BadSignature::Mismatch));
        assert_eq!(verify(secret, body, "v1=zz", now), Err(BadSignature::Malformed));
        assert_eq!(verify(secret, body, "", now), Err(BadSignature::Malformed));
    }
}
