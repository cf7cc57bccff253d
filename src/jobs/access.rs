//! Who is asking, and what they may see: with API keys on, a receipt and
//! its job belong to the key that uploaded it; other keys are told it does
//! not exist, admin keys see everything. Receipts without an owner
//! (uploaded while the API was open, before owners were recorded, or added
//! by another BullMQ producer) stay visible to every key, as they were.

use crate::config::{ApiKey, ApiKeys};

/// The caller of one request, as the API layer identified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's name, recorded as the owner of what it uploads; `None`
    /// when the API is open.
    key: Option<String>,
    sees_all: bool,
    may_steer_queue: bool,
}

impl Caller {
    /// Anyone, when no API keys are configured: sees and may do everything.
    pub fn open() -> Self {
        Self {
            key: None,
            sees_all: true,
            may_steer_queue: true,
        }
    }

    /// The holder of `key`, one of `keys`. Pausing and resuming the queue
    /// needs an admin key once keys are named; with plain keys only, any
    /// key may, as before keys had names.
    pub fn with_key(key: &ApiKey, keys: &ApiKeys) -> Self {
        Self {
            key: Some(key.name.clone()),
            sees_all: key.admin,
            may_steer_queue: key.admin || !keys.are_named(),
        }
    }

    /// The owner recorded on an upload.
    pub fn owner(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// Whether a receipt owned by `owner` is visible to this caller.
    pub fn may_see(&self, owner: Option<&str>) -> bool {
        self.sees_all || owner.is_none() || owner == self.key.as_deref()
    }

    /// The owner a listing is restricted to (with unowned receipts), or
    /// `None` for every receipt.
    pub fn listing_owner(&self) -> Option<&str> {
        if self.sees_all {
            None
        } else {
            self.key.as_deref()
        }
    }

    pub fn sees_all(&self) -> bool {
        self.sees_all
    }

    pub fn may_steer_queue(&self) -> bool {
        self.may_steer_queue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ApiKeys {
        ApiKeys::new(
            vec![
                ("shop".into(), "k1".into(), false),
                ("ops".into(), "k2".into(), true),
            ],
            true,
        )
    }

    #[test]
    fn a_key_sees_its_own_and_unowned_receipts_an_admin_sees_all() {
        let keys = keys();
        let shop = Caller::with_key(keys.identify("k1").unwrap(), &keys);
        let ops = Caller::with_key(keys.identify("k2").unwrap(), &keys);
        assert!(shop.may_see(Some("shop")) && shop.may_see(None));
        assert!(!shop.may_see(Some("ops")));
        assert!(ops.may_see(Some("shop")) && ops.may_see(Some("anyone")));
        assert_eq!(shop.listing_owner(), Some("shop"));
        assert_eq!(ops.listing_owner(), None);
        assert!(!shop.may_steer_queue() && ops.may_steer_queue());
    }

    #[test]
    fn with_plain_keys_any_key_steers_the_queue_but_sees_only_its_own() {
        let keys = ApiKeys::plain(&["a", "b"]);
        let first = Caller::with_key(keys.identify("a").unwrap(), &keys);
        assert!(first.may_steer_queue());
        assert_eq!(first.owner(), Some("key1"));
        assert!(!first.may_see(Some("key2")));
    }
}
