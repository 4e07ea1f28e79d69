//! The vocabulary: roles of the person called, business types and verification results.
//!
//! The built-in terms are the source document's (figure 7), with Chinese labels as the
//! document prints them and English equivalents. A configuration file can extend or replace
//! them for another institution (see [`Vocabulary::load`]). Records store the label (it is what
//! the figure 3C line carries); codes are what operators type.

use crate::places;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One term: a code, its label and an English equivalent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Term {
    pub code: u8,
    pub label: String,
    #[serde(default)]
    pub english: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vocabulary {
    pub roles: Vec<Term>,
    pub business_types: Vec<Term>,
    pub results: Vec<Term>,
}

fn terms(list: &[(u8, &str, &str)]) -> Vec<Term> {
    list.iter()
        .map(|&(code, label, english)| Term {
            code,
            label: label.to_string(),
            english: english.to_string(),
        })
        .collect()
}

/// A vocabulary configuration file. `mode` is `extend` (the default: terms are added to the
/// built-in ones, replacing any with the same code) or `replace` (the lists given replace the
/// built-in lists; lists not given stay built-in).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VocabularyFile {
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    roles: Option<Vec<Term>>,
    #[serde(default)]
    business_types: Option<Vec<Term>>,
    #[serde(default)]
    results: Option<Vec<Term>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    #[default]
    Extend,
    Replace,
}

#[derive(Debug, thiserror::Error)]
#[error("vocabulary file {path:?}: {reason}")]
pub struct VocabularyError {
    pub path: PathBuf,
    pub reason: String,
}

/// Which list a term belongs to, for messages and lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Role,
    BusinessType,
    Result,
}

impl Vocabulary {
    /// The source document's terms.
    pub fn builtin() -> Vocabulary {
        Vocabulary {
            roles: terms(&[
                (
                    1,
                    "法定代表人/单位负责人",
                    "legal representative / unit head",
                ),
                (2, "财务负责人", "finance head"),
                (3, "财务人员", "finance staff"),
                (4, "对账人员", "reconciliation staff"),
                (5, "其他人员", "other"),
            ]),
            business_types: terms(&[
                (1, "大额支付", "large-value payment"),
                (2, "对公账户", "corporate account"),
                (3, "对私业务", "personal business"),
                (4, "银企对账", "bank-enterprise reconciliation"),
                (5, "其他", "other"),
            ]),
            results: terms(&[
                (1, "核实成功", "success"),
                (
                    2,
                    "核实失败,电话号码不存在或空号",
                    "failed: number does not exist or is vacant",
                ),
                (
                    3,
                    "核实失败,电话长时间占线或关机",
                    "failed: line busy or phone off for a long time",
                ),
                (
                    4,
                    "核实失败,电话长时间无人接听",
                    "failed: no answer for a long time",
                ),
                (
                    5,
                    "核实失败,电话号码不符或联系人已变更",
                    "failed: number wrong or contact changed",
                ),
                (
                    6,
                    "核实失败,对方称对业务不知晓",
                    "failed: the party knows nothing of the business",
                ),
                (7, "核实失败,其他原因", "failed: other reason"),
            ]),
        }
    }

    /// The vocabulary a tool uses: the built-in one changed by the file named by `flag`
    /// (`--vocabulary`), else by `$CALLREC_VOCABULARY` (a named file must exist and be
    /// readable), else by the configuration file if there is one.
    pub fn configured(flag: Option<&Path>) -> Result<Vocabulary, VocabularyError> {
        match flag
            .map(Path::to_path_buf)
            .or_else(places::vocabulary_from_env)
        {
            Some(path) => Vocabulary::load(Some(&path), true),
            None => Vocabulary::load(Some(&places::vocabulary()), false),
        }
    }

    /// The built-in vocabulary, changed by the file at `path` if it exists (or, for an
    /// explicitly named file, if `required`). Only a regular file is read: a named pipe is
    /// refused, not waited on.
    pub fn load(path: Option<&Path>, required: bool) -> Result<Vocabulary, VocabularyError> {
        let mut vocab = Vocabulary::builtin();
        let Some(path) = path else {
            return Ok(vocab);
        };
        let error = |reason: String| VocabularyError {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = match crate::fsutil::read_regular(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(vocab),
            Err(e) => return Err(error(e.to_string())),
        };
        let file: VocabularyFile =
            serde_json::from_slice(&bytes).map_err(|e| error(e.to_string()))?;
        for (list, given) in [
            (&mut vocab.roles, file.roles),
            (&mut vocab.business_types, file.business_types),
            (&mut vocab.results, file.results),
        ] {
            let Some(given) = given else { continue };
            match file.mode {
                Mode::Replace => *list = given,
                Mode::Extend => {
                    for term in given {
                        list.retain(|t| t.code != term.code);
                        list.push(term);
                    }
                    list.sort_by_key(|t| t.code);
                }
            }
        }
        for (name, list) in [
            ("roles", &vocab.roles),
            ("business_types", &vocab.business_types),
            ("results", &vocab.results),
        ] {
            for term in list {
                if term.label.is_empty()
                    || term.label.contains('|')
                    || term.label.chars().any(char::is_control)
                {
                    return Err(error(format!(
                        "{name}: the label of code {} is empty or holds '|' or a control character",
                        term.code
                    )));
                }
            }
        }
        Ok(vocab)
    }

    pub fn list(&self, kind: Kind) -> &[Term] {
        match kind {
            Kind::Role => &self.roles,
            Kind::BusinessType => &self.business_types,
            Kind::Result => &self.results,
        }
    }

    pub fn by_code(&self, kind: Kind, code: u8) -> Option<&Term> {
        self.list(kind).iter().find(|t| t.code == code)
    }

    pub fn by_label(&self, kind: Kind, label: &str) -> Option<&Term> {
        self.list(kind).iter().find(|t| t.label == label)
    }

    /// A term named by its code, its label or its English equivalent.
    pub fn find(&self, kind: Kind, value: &str) -> Option<&Term> {
        let value = value.trim();
        match value.parse::<u8>() {
            Ok(code) => self.by_code(kind, code),
            Err(_) => self
                .list(kind)
                .iter()
                .find(|t| t.label == value || t.english.eq_ignore_ascii_case(value)),
        }
    }
}

impl Kind {
    /// The option that names a term of this kind.
    pub fn option(self) -> &'static str {
        match self {
            Kind::Role => "--role",
            Kind::BusinessType => "--business-type",
            Kind::Result => "--result",
        }
    }
}

/// A value that names no term of the vocabulary: the message names the valid values and, when
/// one is close, suggests it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UnknownTerm {
    pub kind: Kind,
    pub message: String,
}

impl Vocabulary {
    /// The term `value` names (a code, a label or an English equivalent), or an error that
    /// lists the valid terms and suggests the closest.
    pub fn resolve(&self, kind: Kind, value: &str) -> Result<&Term, UnknownTerm> {
        self.find(kind, value)
            .ok_or_else(|| self.unknown(kind, value.trim()))
    }

    /// The term of `code`, or an error that lists the valid codes.
    pub fn resolve_code(&self, kind: Kind, code: u8) -> Result<&Term, UnknownTerm> {
        self.by_code(kind, code)
            .ok_or_else(|| self.unknown(kind, &code.to_string()))
    }

    fn unknown(&self, kind: Kind, value: &str) -> UnknownTerm {
        let list = self.list(kind);
        let valid = list
            .iter()
            .map(|t| {
                if t.english.is_empty() {
                    format!("{} {}", t.code, t.label)
                } else {
                    format!("{} {} ({})", t.code, t.label, t.english)
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let suggestion = closest(list, value)
            .map(|t| format!(" (did you mean {} {}?)", t.code, t.label))
            .unwrap_or_default();
        UnknownTerm {
            kind,
            message: format!(
                "{} {value:?} is not in the vocabulary{suggestion}. Valid values (a code, a label or an English name): {valid}",
                kind.option()
            ),
        }
    }
}

/// The term nearest to `value` by edit distance over characters (labels, English names and
/// codes alike), if it is near enough to be a likely slip: at most half the longer string's
/// characters differ.
fn closest<'a>(list: &'a [Term], value: &str) -> Option<&'a Term> {
    let value = value.to_lowercase();
    let value = value.as_str();
    list.iter()
        .flat_map(|t| {
            [
                t.label.to_lowercase(),
                t.english.to_lowercase(),
                t.code.to_string(),
            ]
            .into_iter()
            .filter(|name| !name.is_empty())
            .map(move |name| {
                let longer = name.chars().count().max(value.chars().count());
                let distance = edit_distance(&name, value);
                (distance, longer, t)
            })
        })
        .filter(|&(distance, longer, _)| distance < longer && distance * 2 <= longer)
        .min_by_key(|&(distance, _, t)| (distance, t.code))
        .map(|(_, _, t)| t)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_term_names_the_valid_ones_and_the_closest() {
        let vocab = Vocabulary::builtin();
        let err = vocab.resolve(Kind::BusinessType, "大额核实").unwrap_err();
        assert!(
            err.message.contains("did you mean 1 大额支付?"),
            "{}",
            err.message
        );
        assert!(err.message.contains("5 其他 (other)"), "{}", err.message);
        let err = vocab.resolve(Kind::Role, "finance hed").unwrap_err();
        assert!(err.message.contains("did you mean 2"), "{}", err.message);
        let err = vocab.resolve_code(Kind::Result, 9).unwrap_err();
        assert!(
            err.message.starts_with("--result \"9\" is not"),
            "{}",
            err.message
        );
        assert!(
            err.message.contains("7 核实失败,其他原因"),
            "{}",
            err.message
        );
        assert!(vocab
            .resolve(Kind::Role, "xyzzy-nothing-like")
            .unwrap_err()
            .message
            .contains("vocabulary. Valid values"));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
