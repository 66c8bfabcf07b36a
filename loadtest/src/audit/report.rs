//! The gateway's audit report (`GET /admin/v1/audit`), its verdict and its table.

use serde::Deserialize;

/// The audit of every goods, as the gateway reports it.
#[derive(Debug, Deserialize)]
pub struct AuditReport {
    /// False if any goods violates an invariant.
    pub ok: bool,
    /// One entry per goods.
    pub goods: Vec<GoodsAudit>,
}

/// The figures of one goods and the invariants it violates (`docs/data.md`, "What the audit checks").
#[derive(Debug, Deserialize)]
pub struct GoodsAudit {
    pub goods_id: i64,
    pub name: String,
    pub initial_stock: i64,
    pub db_stock: i64,
    /// None until the sale is warmed up.
    pub redis_stock: Option<i64>,
    /// Units reserved in Redis (a buyer holds one).
    pub holds: i64,
    /// Live orders (unpaid + paid).
    pub orders: i64,
    /// Orders waiting for their payment.
    #[serde(default)]
    pub unpaid: i64,
    #[serde(default)]
    pub paid: i64,
    /// Cancelled orders (their units back on sale).
    #[serde(default)]
    pub cancelled: i64,
    pub duplicates: i64,
    pub oversold: i64,
    /// Accepted tickets whose order is not written (or failed) yet.
    pub pending_tickets: i64,
    /// No pending tickets: every invariant can be checked.
    pub drained: bool,
    pub violations: Vec<String>,
}

/// What the audit says about one goods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Drained, and every invariant holds.
    Ok,
    /// No violation so far, but tickets are still pending: the Redis invariant is not checked yet.
    Pending,
    /// At least one invariant is violated.
    Violated,
}

impl GoodsAudit {
    /// This goods' verdict.
    pub fn verdict(&self) -> Verdict {
        if !self.violations.is_empty() {
            Verdict::Violated
        } else if !self.drained {
            Verdict::Pending
        } else {
            Verdict::Ok
        }
    }
}

impl AuditReport {
    /// Whether nothing is violated. The gateway's `ok` and the goods' own violations must agree;
    /// either one saying otherwise fails the audit.
    pub fn passed(&self) -> bool {
        self.ok && self.goods.iter().all(|goods| goods.verdict() != Verdict::Violated)
    }

    /// Whether every goods is drained.
    pub fn drained(&self) -> bool {
        self.goods.iter().all(|goods| goods.drained)
    }

    /// Tickets pending over all goods.
    pub fn pending_tickets(&self) -> i64 {
        self.goods.iter().map(|goods| goods.pending_tickets).sum()
    }

    /// The report as a table, the violations under it, and a closing summary line.
    pub fn render(&self) -> String {
        const HEADER: [&str; 13] = [
            "goods",
            "name",
            "initial",
            "db stock",
            "redis stock",
            "holds",
            "orders",
            "paid",
            "cancelled",
            "dups",
            "oversold",
            "pending",
            "verdict",
        ];
        let rows: Vec<[String; 13]> = self.goods.iter().map(row).collect();
        let mut widths = HEADER.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        out.push_str(&line(&HEADER.map(String::from), &widths));
        for row in &rows {
            out.push_str(&line(row, &widths));
        }
        for goods in &self.goods {
            for violation in &goods.violations {
                out.push_str(&format!("goods {}: {violation}\n", goods.goods_id));
            }
        }
        out.push_str(&self.summary());
        out.push('\n');
        out
    }

    fn summary(&self) -> String {
        let total = self.goods.len();
        let violated = self.goods.iter().filter(|goods| goods.verdict() == Verdict::Violated).count();
        let pending = self.goods.iter().filter(|goods| goods.verdict() == Verdict::Pending).count();
        match (self.passed(), pending) {
            (true, 0) => format!("{total} goods audited: every invariant holds"),
            (true, _) => format!("{total} goods audited: no violation; {pending} still have pending tickets"),
            (false, _) if violated == 0 => format!("{total} goods audited: the gateway reports a failed audit"),
            (false, _) => format!("{total} goods audited: {violated} VIOLATE an invariant"),
        }
    }
}

fn row(goods: &GoodsAudit) -> [String; 13] {
    let verdict = match goods.verdict() {
        Verdict::Ok => "ok",
        Verdict::Pending => "pending",
        Verdict::Violated => "VIOLATED",
    };
    [
        goods.goods_id.to_string(),
        shorten(&goods.name, 28),
        goods.initial_stock.to_string(),
        goods.db_stock.to_string(),
        goods.redis_stock.map_or_else(|| "not warmed".to_owned(), |stock| stock.to_string()),
        goods.holds.to_string(),
        goods.orders.to_string(),
        goods.paid.to_string(),
        goods.cancelled.to_string(),
        goods.duplicates.to_string(),
        goods.oversold.to_string(),
        goods.pending_tickets.to_string(),
        verdict.to_owned(),
    ]
}

/// One table line: the name column left-aligned, numbers right-aligned, the verdict last.
fn line(cells: &[String; 13], widths: &[usize; 13]) -> String {
    let mut out = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        let padding = " ".repeat(width - cell.chars().count());
        let left_aligned = i == 1 || i == cells.len() - 1;
        if left_aligned {
            out.push_str(cell);
            out.push_str(&padding);
        } else {
            out.push_str(&padding);
            out.push_str(cell);
        }
        out.push_str("  ");
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max - 1).collect();
    format!("{kept}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> AuditReport {
        serde_json::from_str(json).expect("canned audit JSON")
    }

    const CLEAN: &str = r#"{"ok": true, "goods": [
        {"goods_id": 7, "name": "k6 flash sale", "initial_stock": 50, "db_stock": 0, "redis_stock": 0,
         "holds": 50, "orders": 50, "duplicates": 0, "oversold": 0, "pending_tickets": 0,
         "drained": true, "violations": []},
        {"goods_id": 8, "name": "Not on sale yet", "initial_stock": 10, "db_stock": 10, "redis_stock": null,
         "holds": 0, "orders": 0, "duplicates": 0, "oversold": 0, "pending_tickets": 0,
         "drained": true, "violations": []}]}"#;

    const OVERSOLD: &str = r#"{"ok": false, "goods": [
        {"goods_id": 9, "name": "Phone", "initial_stock": 100, "db_stock": 0, "redis_stock": 0,
         "holds": 100, "orders": 103, "duplicates": 1, "oversold": 3, "pending_tickets": 0, "drained": true,
         "violations": ["oversold: 103 orders for 100 units", "1 users ordered more than once"]}]}"#;

    const DRAINING: &str = r#"{"ok": true, "goods": [
        {"goods_id": 10, "name": "Laptop", "initial_stock": 500, "db_stock": 120, "redis_stock": 0,
         "holds": 500, "orders": 380, "duplicates": 0, "oversold": 0, "pending_tickets": 120,
         "drained": false, "violations": []}]}"#;

    #[test]
    fn a_clean_report_passes_with_every_goods_ok() {
        let report = parse(CLEAN);
        assert!(report.passed() && report.drained());
        assert!(report.goods.iter().all(|goods| goods.verdict() == Verdict::Ok));
        let table = report.render();
        assert!(table.ends_with("2 goods audited: every invariant holds\n"), "{table}");
        assert!(table.contains("not warmed"), "a goods never warmed up shows so: {table}");
    }

    #[test]
    fn a_violation_fails_the_audit_and_is_listed_under_the_table() {
        let report = parse(OVERSOLD);
        assert!(!report.passed());
        assert_eq!(report.goods[0].verdict(), Verdict::Violated);
        let table = report.render();
        assert!(table.contains("goods 9: oversold: 103 orders for 100 units\n"), "{table}");
        assert!(table.contains("goods 9: 1 users ordered more than once\n"), "{table}");
        assert!(table.ends_with("1 goods audited: 1 VIOLATE an invariant\n"), "{table}");
    }

    #[test]
    fn pending_tickets_are_not_a_violation_but_not_ok_either() {
        let report = parse(DRAINING);
        assert!(report.passed());
        assert!(!report.drained());
        assert_eq!(report.pending_tickets(), 120);
        assert_eq!(report.goods[0].verdict(), Verdict::Pending);
        assert!(report.render().ends_with("no violation; 1 still have pending tickets\n"));
    }

    #[test]
    fn the_gateways_ok_false_fails_even_without_listed_violations() {
        let report = parse(&CLEAN.replacen(r#""ok": true"#, r#""ok": false"#, 1));
        assert!(!report.passed());
        assert!(report.render().ends_with("the gateway reports a failed audit\n"));
    }

    #[test]
    fn the_table_lines_up_its_columns() {
        let table = parse(CLEAN).render();
        let lines: Vec<&str> = table.lines().take(3).collect();
        assert_eq!(
            lines,
            [
                "goods  name             initial  db stock  redis stock  holds  orders  paid  cancelled  dups  oversold  pending  verdict",
                "    7  k6 flash sale         50         0            0     50      50     0          0     0         0        0  ok",
                "    8  Not on sale yet       10        10   not warmed      0       0     0          0     0         0        0  ok",
            ]
        );
    }

    #[test]
    fn long_names_are_shortened() {
        assert_eq!(shorten("short", 28), "short");
        assert_eq!(shorten("abcdefghij", 5), "abcd…");
    }
}
