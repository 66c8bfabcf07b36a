//! Usernames: 3 to 64 characters among letters, digits, `_`, `-` and `.`.

use contracts::user::UserError;

/// A username that passed validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Username(String);

impl Username {
    /// Validates a raw username.
    pub(crate) fn parse(raw: &str) -> Result<Username, UserError> {
        let valid_chars = raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !(3..=64).contains(&raw.len()) || !valid_chars {
            return Err(UserError::Invalid("a username has 3 to 64 characters: letters, digits, _ - .".into()));
        }
        Ok(Username(raw.to_owned()))
    }

    /// The name.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a new password's length (8 to 128 characters).
pub(crate) fn check_password(password: &str) -> Result<(), UserError> {
    if !(8..=128).contains(&password.chars().count()) {
        return Err(UserError::Invalid("a password has 8 to 128 characters".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_validated() {
        assert!(Username::parse("alice_01").is_ok());
        for bad in ["ab", "with space", "semi;colon", "", &"x".repeat(65), "émile"] {
            assert!(Username::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn passwords_have_a_length_range() {
        assert!(check_password("long enough").is_ok());
        assert!(check_password("short").is_err());
        assert!(check_password(&"p".repeat(129)).is_err());
    }
}
