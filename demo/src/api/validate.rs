//! What makes an order acceptable. Pure, so it is tested on its own.

use serde::Deserialize;

use super::error::FieldError;
use crate::db::orders::Item;

/// The body of `POST /v1/orders`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOrder {
    /// Who orders: 1 to 64 characters.
    pub customer_id: String,
    /// ISO 4217 code, three capital letters; `EUR` when absent.
    #[serde(default)]
    pub currency: Option<String>,
    /// 1 to 50 lines.
    pub items: Vec<Item>,
}

/// An order that passed validation, with its total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidOrder {
    /// Who orders.
    pub customer_id: String,
    /// ISO 4217 code.
    pub currency: String,
    /// The lines.
    pub items: Vec<Item>,
    /// Sum of quantity × unit price, in cents.
    pub total_cents: i64,
}

/// Most lines in one order.
pub const MAX_ITEMS: usize = 50;
/// Most units of one line.
pub const MAX_QUANTITY: u32 = 100;
/// Highest unit price, in cents.
pub const MAX_UNIT_PRICE_CENTS: u64 = 1_000_000;

fn text_ok(s: &str) -> bool {
    !s.trim().is_empty() && s.chars().count() <= 64 && !s.chars().any(char::is_control)
}

/// Checks every rule and reports every broken one, not just the first.
pub fn validate(req: CreateOrder) -> Result<ValidOrder, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut bad = |field: String, problem: &str| {
        errors.push(FieldError {
            field,
            problem: problem.to_owned(),
        })
    };
    if !text_ok(&req.customer_id) {
        bad("customer_id".into(), "must be 1 to 64 printable characters");
    }
    let currency = req.currency.unwrap_or_else(|| "EUR".to_owned());
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        bad(
            "currency".into(),
            "must be a three-letter ISO 4217 code such as EUR",
        );
    }
    if req.items.is_empty() || req.items.len() > MAX_ITEMS {
        bad("items".into(), "must hold 1 to 50 items");
    }
    let mut total: u64 = 0;
    for (i, item) in req.items.iter().enumerate() {
        if !text_ok(&item.sku) {
            bad(
                format!("items[{i}].sku"),
                "must be 1 to 64 printable characters",
            );
        }
        if item.quantity == 0 || item.quantity > MAX_QUANTITY {
            bad(format!("items[{i}].quantity"), "must be between 1 and 100");
        }
        if item.unit_price_cents == 0 || item.unit_price_cents > MAX_UNIT_PRICE_CENTS {
            bad(
                format!("items[{i}].unit_price_cents"),
                "must be between 1 and 1000000",
            );
        }
        total =
            total.saturating_add(u64::from(item.quantity).saturating_mul(item.unit_price_cents));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ValidOrder {
        customer_id: req.customer_id,
        currency,
        items: req.items,
        // At most 50 × 100 × 1 000 000: far below i64::MAX.
        total_cents: i64::try_from(total).unwrap_or(i64::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item(sku: &str, quantity: u32, unit_price_cents: u64) -> Item {
        Item {
            sku: sku.into(),
            quantity,
            unit_price_cents,
        }
    }

    #[test]
    fn a_good_order_gets_its_total_and_default_currency() {
        let v = validate(CreateOrder {
            customer_id: "c-1".into(),
            currency: None,
            items: vec![item("A", 2, 150), item("B", 1, 1000)],
        })
        .unwrap();
        assert_eq!(v.total_cents, 1300);
        assert_eq!(v.currency, "EUR");
    }

    #[test]
    fn every_problem_is_reported() {
        let errs = validate(CreateOrder {
            customer_id: " ".into(),
            currency: Some("euro".into()),
            items: vec![item("", 0, 0)],
        })
        .unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "customer_id",
                "currency",
                "items[0].sku",
                "items[0].quantity",
                "items[0].unit_price_cents"
            ]
        );
        assert!(
            validate(CreateOrder {
                customer_id: "c".into(),
                currency: None,
                items: vec![]
            })
            .is_err()
        );
    }

    proptest! {
        #[test]
        fn accepted_orders_respect_every_bound(
            customer in "\\PC{0,80}",
            lines in proptest::collection::vec((0u32..200, 0u64..2_000_000), 0..60),
        ) {
            let items: Vec<Item> = lines.iter().map(|(q, p)| item("SKU", *q, *p)).collect();
            let req = CreateOrder { customer_id: customer, currency: None, items };
            if let Ok(v) = validate(req.clone()) {
                prop_assert!(!v.items.is_empty() && v.items.len() <= MAX_ITEMS);
                prop_assert!(v.items.iter().all(|i| (1..=MAX_QUANTITY).contains(&i.quantity)));
                let expected: i64 = v.items.iter()
                    .map(|i| i64::from(i.quantity) * i64::try_from(i.unit_price_cents).unwrap())
                    .sum();
                prop_assert_eq!(v.total_cents, expected);
                prop_assert!(text_ok(&v.customer_id));
            } else {
                let bad_line = req.items.iter().any(|i| i.quantity == 0 || i.quantity > MAX_QUANTITY
                    || i.unit_price_cents == 0 || i.unit_price_cents > MAX_UNIT_PRICE_CENTS);
                prop_assert!(bad_line || req.items.is_empty() || req.items.len() > MAX_ITEMS
                    || !text_ok(&req.customer_id));
            }
        }
    }
}
