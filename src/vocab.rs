//! The document's vocabulary: roles of the person called, business types and verification
//! results (figure 7 of the source document), with Chinese labels as the document prints them
//! and English equivalents.
//!
//! Records store the Chinese label (it is what the figure 3C line carries); codes are the stable
//! numbers used on the command line and in queries.

/// One term of a vocabulary: a code, the document's label and an English equivalent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    pub code: u8,
    pub label: &'static str,
    pub english: &'static str,
}

const fn term(code: u8, label: &'static str, english: &'static str) -> Term {
    Term {
        code,
        label,
        english,
    }
}

/// Role of the person called.
pub const ROLES: &[Term] = &[
    term(
        1,
        "法定代表人/单位负责人",
        "legal representative / unit head",
    ),
    term(2, "财务负责人", "finance head"),
    term(3, "财务人员", "finance staff"),
    term(4, "对账人员", "reconciliation staff"),
    term(5, "其他人员", "other"),
];

/// Business type of the call.
pub const BUSINESS_TYPES: &[Term] = &[
    term(1, "大额支付", "large-value payment"),
    term(2, "对公账户", "corporate account"),
    term(3, "对私业务", "personal business"),
    term(4, "银企对账", "bank-enterprise reconciliation"),
    term(5, "其他", "other"),
];

/// Verification result codes 1-7.
pub const RESULTS: &[Term] = &[
    term(1, "核实成功", "success"),
    term(
        2,
        "核实失败,电话号码不存在或空号",
        "failed: number does not exist or is vacant",
    ),
    term(
        3,
        "核实失败,电话长时间占线或关机",
        "failed: line busy or phone off for a long time",
    ),
    term(
        4,
        "核实失败,电话长时间无人接听",
        "failed: no answer for a long time",
    ),
    term(
        5,
        "核实失败,电话号码不符或联系人已变更",
        "failed: number wrong or contact changed",
    ),
    term(
        6,
        "核实失败,对方称对业务不知晓",
        "failed: the party knows nothing of the business",
    ),
    term(7, "核实失败,其他原因", "failed: other reason"),
];

/// The term with this code.
pub fn by_code(terms: &[Term], code: u8) -> Option<&Term> {
    terms.iter().find(|t| t.code == code)
}

/// The term whose label is exactly `label`.
pub fn by_label<'a>(terms: &'a [Term], label: &str) -> Option<&'a Term> {
    terms.iter().find(|t| t.label == label)
}
