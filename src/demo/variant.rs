//! Program variants: what makes one generated program structurally different from
//! another (tier ids and names, currency, fiscal year, regions, product families,
//! certifications, sizes, plan rates). Variant 0 resembles the shared sample.

use rust_decimal::Decimal;

/// One product family of a variant.
#[derive(Debug, Clone)]
pub struct FamilySpec {
    pub name: &'static str,
    /// SKU prefix, e.g. `HAR`.
    pub prefix: &'static str,
    /// List price range in whole currency units (per hour for services).
    pub price: (u32, u32),
    /// Certification required by some (or all) of its products.
    pub certification: Option<String>,
    /// Share of the family's products that need the certification.
    pub cert_share: f64,
    /// Base maximum discount (percent) for the lowest tier.
    pub base_discount: u32,
    /// How popular the family is.
    pub weight: f64,
}

/// The structural parameters of a generated program.
#[derive(Debug, Clone)]
pub struct Variant {
    pub index: u32,
    /// `(tier_id, name)` from the lowest rank up.
    pub tiers: Vec<(&'static str, &'static str)>,
    pub currency: &'static str,
    pub fiscal_year_start_month: u32,
    pub regions: Vec<&'static str>,
    pub families: Vec<FamilySpec>,
    /// Multiplies every deal size (currency and program size).
    pub size_scale: f64,
    /// Discount policy step per tier rank, percent.
    pub discount_step: u32,
    /// Deals at or above this need a deal registration.
    pub registration_threshold: Decimal,
    pub seller_rate_base: Decimal,
    pub seller_rate_step: Decimal,
    pub override_rate: Decimal,
    pub accelerators: Vec<(Decimal, Decimal)>,
    pub per_transaction_cap: Decimal,
    pub clawback_window_days: i64,
    /// The family a SPIFF runs on in the review window.
    pub spiff_family: &'static str,
    pub spiff_per_unit: Decimal,
    pub family_multipliers: Vec<(&'static str, Decimal)>,
}

const TIER_SETS: [&[(&str, &str)]; 6] = [
    &[
        ("registered", "Registered"),
        ("silver", "Silver"),
        ("gold", "Gold"),
        ("platinum", "Platinum"),
    ],
    &[("bronze", "Bronze"), ("silver", "Silver"), ("gold", "Gold")],
    &[
        ("registered", "Registered"),
        ("select", "Select"),
        ("premier", "Premier"),
        ("elite", "Elite"),
    ],
    &[
        ("authorized", "Authorized"),
        ("advanced", "Advanced"),
        ("expert", "Expert"),
        ("master", "Master"),
        ("titanium", "Titanium"),
    ],
    &[
        ("associate", "Associate"),
        ("affiliate", "Affiliate"),
        ("preferred", "Preferred"),
        ("strategic", "Strategic"),
        ("global_elite", "Global Elite"),
    ],
    &[
        ("l1", "Level 1"),
        ("l2", "Level 2"),
        ("l3", "Level 3"),
        ("l4", "Level 4"),
    ],
];

/// `(code, size factor)`: deal sizes scale with the currency's unit value.
const CURRENCIES: [(&str, f64); 7] = [
    ("USD", 1.0),
    ("EUR", 0.92),
    ("GBP", 0.8),
    ("AUD", 1.5),
    ("CAD", 1.35),
    ("CHF", 0.9),
    ("SEK", 10.5),
];

const FISCAL_STARTS: [u32; 7] = [1, 4, 7, 10, 2, 11, 6];

const REGION_SETS: [&[&str]; 3] = [
    &["NA", "EMEA", "APAC"],
    &["NA", "EMEA", "APAC", "LATAM"],
    &["AMER", "EMEA", "APJ", "ANZ", "MEA"],
];

const SIZE_SCALES: [f64; 5] = [1.0, 0.6, 1.6, 2.5, 0.8];

fn d(units: i64, scale: u32) -> Decimal {
    Decimal::new(units, scale)
}

fn family(
    name: &'static str,
    cert: Option<&str>,
    cert_share: f64,
    base_discount: u32,
    weight: f64,
) -> FamilySpec {
    let (prefix, price) = match name {
        "hardware" => ("HAR", (400, 12_000)),
        "software" => ("SOF", (150, 8_000)),
        "subscriptions" => ("SUB", (40, 600)),
        "security" => ("SEC", (250, 6_000)),
        "services" => ("SER", (110, 260)),
        "networking" => ("NET", (300, 9_000)),
        "cloud" => ("CLD", (60, 900)),
        _ => ("GEN", (100, 1_000)),
    };
    FamilySpec {
        name,
        prefix,
        price,
        certification: cert.map(str::to_string),
        cert_share,
        base_discount,
        weight,
    }
}

impl Variant {
    /// The variant with this index. Indices cycle through independent tables with
    /// different periods, so neighbouring variants differ in nearly everything.
    pub fn new(index: u32) -> Variant {
        let n = index as usize;
        let tiers = TIER_SETS[n % TIER_SETS.len()].to_vec();
        let (currency, cur_scale) = CURRENCIES[n % CURRENCIES.len()];
        let fy = FISCAL_STARTS[n % FISCAL_STARTS.len()];
        let regions = REGION_SETS[n % REGION_SETS.len()].to_vec();
        let size_scale = cur_scale * SIZE_SCALES[(n / 3) % SIZE_SCALES.len()];
        let (sec_cert, infra_cert) = if n % 2 == 0 {
            ("security", "infrastructure")
        } else {
            ("cybersecurity", "datacenter")
        };
        let families = match n % 4 {
            0 => vec![
                family("hardware", Some(infra_cert), 0.4, 15, 1.0),
                family("software", None, 0.0, 10, 1.2),
                family("subscriptions", None, 0.0, 5, 1.3),
                family("security", Some(sec_cert), 1.0, 10, 0.8),
                family("services", None, 0.0, 10, 0.7),
            ],
            1 => vec![
                family("hardware", Some(infra_cert), 0.5, 12, 1.0),
                family("software", Some("software_specialist"), 0.3, 8, 1.1),
                family("security", Some(sec_cert), 1.0, 10, 0.9),
                family("services", None, 0.0, 5, 0.6),
                family("networking", Some(infra_cert), 0.6, 15, 0.9),
            ],
            2 => vec![
                family("software", None, 0.0, 12, 1.2),
                family("subscriptions", None, 0.0, 6, 1.5),
                family("security", Some(sec_cert), 0.8, 10, 0.8),
                family("services", None, 0.0, 8, 0.6),
                family("cloud", Some("cloud"), 0.7, 10, 1.0),
            ],
            _ => vec![
                family("hardware", Some(infra_cert), 0.4, 18, 0.9),
                family("software", None, 0.0, 10, 1.0),
                family("subscriptions", None, 0.0, 5, 1.2),
                family("security", Some(sec_cert), 1.0, 12, 0.7),
                family("services", None, 0.0, 10, 0.5),
                family("networking", Some(infra_cert), 0.5, 15, 0.7),
                family("cloud", Some("cloud"), 0.6, 8, 0.8),
            ],
        };
        let discount_step = [10, 8, 7, 12, 6][n % 5];
        // Registration threshold: 25k in the sample's money, scaled, to a round figure.
        let thr = (25_000.0 * size_scale / 1000.0).round().max(1.0) as i64 * 1000;
        let (rate_base, rate_step) = [(5, 3), (4, 2), (6, 2), (3, 2), (5, 1)][n % 5];
        let override_rate = [d(2, 2), d(15, 3), d(25, 3), d(3, 2)][n % 4];
        let accelerators = match n % 3 {
            0 => vec![(d(10, 1), d(15, 1)), (d(125, 2), d(20, 1))],
            1 => vec![(d(10, 1), d(125, 2))],
            _ => vec![
                (d(9, 1), d(12, 1)),
                (d(11, 1), d(15, 1)),
                (d(15, 1), d(25, 1)),
            ],
        };
        let cap = (50_000.0 * size_scale / 1000.0).round().max(1.0) as i64 * 1000;
        let clawback = [90, 60, 120, 90, 45][n % 5];
        let spiff_family = families
            .iter()
            .find(|f| f.name == "security")
            .map(|f| f.name)
            .unwrap_or(families[0].name);
        let spiff_units = ((150.0 * size_scale) as i64).max(1);
        let mut family_multipliers = Vec::new();
        if families.iter().any(|f| f.name == "services") {
            family_multipliers.push(("services", [d(5, 1), d(4, 1), d(6, 1)][n % 3]));
        }
        if n % 2 == 1 {
            if let Some(f) = families
                .iter()
                .find(|f| f.name == "subscriptions" || f.name == "cloud")
            {
                family_multipliers.push((f.name, d(12, 1)));
            }
        }
        Variant {
            index,
            tiers,
            currency,
            fiscal_year_start_month: fy,
            regions,
            families,
            size_scale,
            discount_step,
            registration_threshold: Decimal::from(thr),
            seller_rate_base: d(rate_base, 2),
            seller_rate_step: d(rate_step, 2),
            override_rate,
            accelerators,
            per_transaction_cap: Decimal::from(cap),
            clawback_window_days: clawback,
            spiff_family,
            spiff_per_unit: Decimal::from(spiff_units),
            family_multipliers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_variants_differ() {
        let a = Variant::new(0);
        let b = Variant::new(1);
        assert_ne!(a.tiers, b.tiers);
        assert_ne!(a.currency, b.currency);
        assert_ne!(a.fiscal_year_start_month, b.fiscal_year_start_month);
        for i in 0..40 {
            let v = Variant::new(i);
            assert!((3..=5).contains(&v.tiers.len()));
            assert!(v.registration_threshold > Decimal::ZERO);
        }
    }
}
