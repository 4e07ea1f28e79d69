//! `callrec-annotate`: its options and its manual's sections.

use std::path::PathBuf;

use clap::Parser;

use super::{after_help, Section, SEE_ALSO};

pub const ANNOTATE_SECTIONS: &[Section] = &[
    Section {
        title: "FIELDS",
        lines: &[
            "--role, --business and --result take a code or a label from the vocabulary:",
            "roles: 1 法定代表人/单位负责人, 2 财务负责人, 3 财务人员, 4 对账人员, 5 其他人员",
            "business: 1 大额支付, 2 对公账户, 3 对私业务, 4 银企对账, 5 其他",
            "results: 1 核实成功 (success); 2-7 核实失败 (failed: vacant number, busy or off,",
            "  no answer, number wrong or contact changed, party unaware, other reason)",
            "A vocabulary file extends or replaces these: --vocabulary, else $CALLREC_VOCABULARY,",
            "else $XDG_CONFIG_HOME/callrec/vocabulary.json, else ~/.config/callrec/vocabulary.json.",
            "Values are validated: ID numbers (GB 11643), credit codes (GB 32100), card numbers",
            "(Luhn), account numbers (8-32 digits), phone numbers; text may not hold '|' or control",
            "characters, so the document's figure 3C line and terminals stay intact.",
        ],
    },
    Section {
        title: "BATCH FILES",
        lines: &[
            "--from-csv: a header row naming the columns, then one row per record. Columns:",
            "record_id, or phone and call_time (matched within a minute), to name the record;",
            "operator, operator_name, institution, institution_name, customer, role, business,",
            "account, card, credit_code, id_number, result, remark, flag, phone to set fields.",
            "--from-json: JSON Lines with the same keys. Bad rows are reported with their line",
            "numbers and change nothing; good rows are applied.",
        ],
    },
    Section {
        title: "CORRECTIONS",
        lines: &[
            "A sealed record is never changed. Annotating one writes a correction in --output-dir:",
            "ID.correction (empty media) and ID.correction.callrec.json, the whole record as",
            "corrected, naming the original's record id and manifest hash. Seal it in turn (with",
            "--remove-source to clean up); callrec-verify lists the original and its corrections",
            "as the record's history.",
        ],
    },
    Section {
        title: "EXIT STATUS",
        lines: &[
            "0  every record annotated",
            "1  some record or row was invalid (each is reported; it changed nothing)",
            "2  usage error, or a batch or vocabulary file could not be read",
        ],
    },
    Section {
        title: "EXAMPLES",
        lines: &[
            "callrec-annotate --operator 130002 --customer 李霞 --role 3 --result 1 call.mkv",
            "callrec-capture -o spool | callrec-annotate --interactive | callrec-seal -o sealed",
            "callrec-annotate --from-csv today.csv spool/",
            "callrec-annotate --print-line spool/*.mkv",
            "callrec-annotate --result 1 sealed/call.sealed.mkv | callrec-seal -o sealed --remove-source",
        ],
    },
    Section {
        title: "SEE ALSO",
        lines: &[SEE_ALSO],
    },
];

/// Record what a call was about: the operator's remarks, validated, with the terminal's
/// identity and the time.
///
/// Each RECORD is a media file or its sidecar (MEDIA.callrec.json); a directory is walked.
/// With no RECORD and stdin not a terminal, paths are read from stdin. The sidecar is replaced
/// atomically, or not at all if any value is invalid. Record paths are printed on stdout, so
/// callrec-annotate sits between callrec-capture and callrec-seal in a pipeline.
#[derive(Debug, Parser)]
#[command(
    name = "callrec-annotate",
    version,
    after_help = after_help(ANNOTATE_SECTIONS)
)]
pub struct AnnotateArgs {
    /// Records (media files or sidecars) or directories
    #[arg(value_name = "RECORD")]
    pub records: Vec<PathBuf>,

    /// Operator (teller) number
    #[arg(long, value_name = "ID", help_heading = "Fields")]
    pub operator: Option<String>,
    /// Operator's name
    #[arg(long, value_name = "NAME", help_heading = "Fields")]
    pub operator_name: Option<String>,
    /// Institution code
    #[arg(long, value_name = "CODE", help_heading = "Fields")]
    pub institution: Option<String>,
    /// Institution name
    #[arg(long, value_name = "NAME", help_heading = "Fields")]
    pub institution_name: Option<String>,
    /// Name of the customer called
    #[arg(long, value_name = "NAME", help_heading = "Fields")]
    pub customer: Option<String>,
    /// Role of the person called (code or label)
    #[arg(long, value_name = "ROLE", help_heading = "Fields")]
    pub role: Option<String>,
    /// Business type (code or label)
    #[arg(long, value_name = "TYPE", help_heading = "Fields")]
    pub business: Option<String>,
    /// Account number (8-32 digits)
    #[arg(
        long,
        value_name = "NUMBER",
        help_heading = "Fields",
        conflicts_with = "card"
    )]
    pub account: Option<String>,
    /// Bank card number (Luhn-checked); stored as the account
    #[arg(long, value_name = "NUMBER", help_heading = "Fields")]
    pub card: Option<String>,
    /// Unified social credit code of the company
    #[arg(long, value_name = "CODE", help_heading = "Fields")]
    pub credit_code: Option<String>,
    /// Personal ID number (18 characters)
    #[arg(long, value_name = "NUMBER", help_heading = "Fields")]
    pub id_number: Option<String>,
    /// Verification result, 1-7 (code or label)
    #[arg(long, value_name = "CODE", help_heading = "Fields")]
    pub result: Option<String>,
    /// Free remark
    #[arg(long, value_name = "TEXT", help_heading = "Fields")]
    pub remark: Option<String>,
    /// Collection flag, e.g. 01
    #[arg(long, value_name = "FLAG", help_heading = "Fields")]
    pub flag: Option<String>,
    /// Phone number of the call (normally set by callrec-capture)
    #[arg(long, value_name = "NUMBER", help_heading = "Fields")]
    pub phone: Option<String>,

    /// Fields for many records from a CSV file with a header row
    #[arg(long, value_name = "FILE", conflicts_with = "from_json")]
    pub from_csv: Option<PathBuf>,
    /// Fields for many records from a JSON Lines file
    #[arg(long, value_name = "FILE")]
    pub from_json: Option<PathBuf>,
    /// Ask for each missing field on the terminal, with the vocabulary as numbered choices
    #[arg(short, long, conflicts_with_all = ["from_csv", "from_json"])]
    pub interactive: bool,

    /// Reads sealed records' text info, to correct them: an age identity, a table key or a key
    /// directory [default: the key directory, as for callrec-seal]
    #[arg(long, value_name = "ID")]
    pub identity: Option<PathBuf>,
    /// Vocabulary file extending or replacing the built-in terms
    #[arg(long, value_name = "FILE")]
    pub vocabulary: Option<PathBuf>,
    /// Where corrections of sealed records are written
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub output_dir: PathBuf,

    /// Print each record's figure 3C line instead of its path
    #[arg(long, conflicts_with = "json")]
    pub print_line: bool,
    /// Print each record as JSON Lines ({"type":"record","path":...,"record":{...}})
    #[arg(long)]
    pub json: bool,
    /// Read and write path lists NUL-separated instead of one per line
    #[arg(short = '0', long = "null")]
    pub null: bool,
}

impl AnnotateArgs {
    /// The field flags given, by field name.
    pub fn fields(&self) -> Vec<(&'static str, &str)> {
        [
            ("operator", &self.operator),
            ("operator_name", &self.operator_name),
            ("institution", &self.institution),
            ("institution_name", &self.institution_name),
            ("customer", &self.customer),
            ("role", &self.role),
            ("business", &self.business),
            ("account", &self.account),
            ("card", &self.card),
            ("credit_code", &self.credit_code),
            ("id_number", &self.id_number),
            ("result", &self.result),
            ("remark", &self.remark),
            ("flag", &self.flag),
            ("phone", &self.phone),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
        .collect()
    }
}
