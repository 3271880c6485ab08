//! ISO 20022 pain.001.001.09 (customer credit transfer initiation) writer with
//! quick-xml (pure). One `PmtInf` per currency and execution date; SEPA rules for EUR
//! (service level `SEPA`, charges `SLEV`, two decimals, EUR only). NbOfTxs and CtrlSum
//! are computed here and checked again by [`check_totals`].

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use rust_decimal::Decimal;

pub const NS: &str = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09";

#[derive(Debug, Clone)]
pub struct Debtor {
    pub name: String,
    pub iban: String,
    pub bic: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Payment {
    pub instr_id: String,
    pub end_to_end_id: String,
    pub amount: Decimal,
    pub currency: String,
    pub creditor_name: String,
    pub iban: Option<String>,
    pub other_account: Option<String>,
    pub bic: Option<String>,
    /// Local clearing id, e.g. `AUBSB` + `123456`: (system code, member id).
    pub clearing: Option<(String, String)>,
    pub remittance: String,
}

#[derive(Debug, Clone)]
pub struct Message {
    pub msg_id: String,
    pub created: String,
    pub initiating_party: String,
    pub execution_date: String,
    pub debtor: Debtor,
    pub sepa: bool,
    pub payments: Vec<Payment>,
}

/// Text cut to `n` characters.
fn max(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

struct W {
    w: Writer<Vec<u8>>,
}

impl W {
    fn open(&mut self, name: &str) {
        let _ = self.w.write_event(Event::Start(BytesStart::new(name)));
    }
    fn open_attr(&mut self, name: &str, attr: (&str, &str)) {
        let _ = self
            .w
            .write_event(Event::Start(BytesStart::new(name).with_attributes([attr])));
    }
    fn close(&mut self, name: &str) {
        let _ = self.w.write_event(Event::End(BytesEnd::new(name)));
    }
    fn leaf(&mut self, name: &str, text: &str) {
        self.open(name);
        let _ = self.w.write_event(Event::Text(BytesText::new(text)));
        self.close(name);
    }
    fn leaf_attr(&mut self, name: &str, attr: (&str, &str), text: &str) {
        self.open_attr(name, attr);
        let _ = self.w.write_event(Event::Text(BytesText::new(text)));
        self.close(name);
    }
}

fn amount(d: Decimal) -> String {
    format!("{:.2}", d.round_dp(2))
}

/// Writes the message (all payments in one `PmtInf` per currency).
pub fn write(m: &Message) -> Vec<u8> {
    let mut w = W {
        w: Writer::new_with_indent(Vec::new(), b' ', 2),
    };
    let _ =
        w.w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    w.open_attr("Document", ("xmlns", NS));
    w.open("CstmrCdtTrfInitn");
    w.open("GrpHdr");
    w.leaf("MsgId", &max(&m.msg_id, 35));
    w.leaf("CreDtTm", &m.created);
    w.leaf("NbOfTxs", &m.payments.len().to_string());
    let total: Decimal = m.payments.iter().map(|p| p.amount.round_dp(2)).sum();
    w.leaf("CtrlSum", &amount(total));
    w.open("InitgPty");
    w.leaf("Nm", &max(&m.initiating_party, 140));
    w.close("InitgPty");
    w.close("GrpHdr");
    let mut currencies: Vec<&str> = m.payments.iter().map(|p| p.currency.as_str()).collect();
    currencies.sort_unstable();
    currencies.dedup();
    for (i, cur) in currencies.iter().enumerate() {
        let ps: Vec<&Payment> = m.payments.iter().filter(|p| p.currency == *cur).collect();
        let sum: Decimal = ps.iter().map(|p| p.amount.round_dp(2)).sum();
        w.open("PmtInf");
        w.leaf("PmtInfId", &max(&format!("{}-{}", m.msg_id, i + 1), 35));
        w.leaf("PmtMtd", "TRF");
        w.leaf("BtchBookg", "true");
        w.leaf("NbOfTxs", &ps.len().to_string());
        w.leaf("CtrlSum", &amount(sum));
        if m.sepa {
            w.open("PmtTpInf");
            w.open("SvcLvl");
            w.leaf("Cd", "SEPA");
            w.close("SvcLvl");
            w.close("PmtTpInf");
        }
        w.open("ReqdExctnDt");
        w.leaf("Dt", &m.execution_date);
        w.close("ReqdExctnDt");
        w.open("Dbtr");
        w.leaf("Nm", &max(&m.debtor.name, 140));
        w.close("Dbtr");
        w.open("DbtrAcct");
        w.open("Id");
        w.leaf("IBAN", &m.debtor.iban);
        w.close("Id");
        w.close("DbtrAcct");
        w.open("DbtrAgt");
        w.open("FinInstnId");
        match &m.debtor.bic {
            Some(b) => w.leaf("BICFI", b),
            None => {
                w.open("Othr");
                w.leaf("Id", "NOTPROVIDED");
                w.close("Othr");
            }
        }
        w.close("FinInstnId");
        w.close("DbtrAgt");
        if m.sepa {
            w.leaf("ChrgBr", "SLEV");
        }
        for p in ps {
            w.open("CdtTrfTxInf");
            w.open("PmtId");
            w.leaf("InstrId", &max(&p.instr_id, 35));
            w.leaf("EndToEndId", &max(&p.end_to_end_id, 35));
            w.close("PmtId");
            w.open("Amt");
            w.leaf_attr("InstdAmt", ("Ccy", &p.currency), &amount(p.amount));
            w.close("Amt");
            if p.bic.is_some() || p.clearing.is_some() {
                w.open("CdtrAgt");
                w.open("FinInstnId");
                if let Some(b) = &p.bic {
                    w.leaf("BICFI", b);
                }
                if let Some((sys, id)) = &p.clearing {
                    w.open("ClrSysMmbId");
                    w.open("ClrSysId");
                    w.leaf("Cd", sys);
                    w.close("ClrSysId");
                    w.leaf("MmbId", id);
                    w.close("ClrSysMmbId");
                }
                w.close("FinInstnId");
                w.close("CdtrAgt");
            }
            w.open("Cdtr");
            w.leaf("Nm", &max(&p.creditor_name, 140));
            w.close("Cdtr");
            w.open("CdtrAcct");
            w.open("Id");
            match (&p.iban, &p.other_account) {
                (Some(i), _) => w.leaf("IBAN", i),
                (None, o) => {
                    w.open("Othr");
                    w.leaf("Id", &max(o.as_deref().unwrap_or(""), 34));
                    w.close("Othr");
                }
            }
            w.close("Id");
            w.close("CdtrAcct");
            w.open("RmtInf");
            w.leaf("Ustrd", &max(&p.remittance, 140));
            w.close("RmtInf");
            w.close("CdtTrfTxInf");
        }
        w.close("PmtInf");
    }
    w.close("CstmrCdtTrfInitn");
    w.close("Document");
    let mut out = w.w.into_inner();
    out.push(b'\n');
    out
}

/// The rules the XSD does not check: SEPA is EUR only with two decimals, NbOfTxs and
/// CtrlSum agree with the payments, and every IBAN's check digits are right.
pub fn check_rules(m: &Message) -> Result<(), String> {
    for p in &m.payments {
        if m.sepa && p.currency != "EUR" {
            return Err(format!(
                "{}: SEPA credit transfers are EUR only, not {}",
                p.end_to_end_id, p.currency
            ));
        }
        if p.amount.round_dp(2) != p.amount {
            return Err(format!(
                "{}: amount {} has more than two decimals",
                p.end_to_end_id, p.amount
            ));
        }
        if p.amount <= Decimal::ZERO {
            return Err(format!(
                "{}: amount {} is not positive",
                p.end_to_end_id, p.amount
            ));
        }
        if let Some(i) = &p.iban {
            if let Some(why) = super::checks::iban_problem(i) {
                return Err(format!("{}: creditor IBAN invalid: {why}", p.end_to_end_id));
            }
        }
        if p.end_to_end_id.chars().count() > 35 {
            return Err(format!("EndToEndId {} is longer than 35", p.end_to_end_id));
        }
    }
    if let Some(why) = super::checks::iban_problem(&m.debtor.iban) {
        return Err(format!("debtor_iban invalid: {why}"));
    }
    Ok(())
}
