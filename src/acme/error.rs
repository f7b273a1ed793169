//! What went wrong while getting a certificate: what was being done, and what the CA (or
//! this machine) answered, as values a caller can match on instead of one sentence.

/// One failure of the ACME exchange. Shown after `Let's Encrypt: ` by [`crate::Error::Acme`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcmeError {
    /// The CA answered with a problem document (RFC 8555 section 6.7).
    #[error("{doing}: {problem}")]
    Refused {
        /// What was asked of the CA ("cannot place the order").
        doing: &'static str,
        /// The CA's answer.
        problem: Problem,
    },
    /// The CA could not be reached or its answer was not ACME (a timeout, TLS, a bad body).
    #[error("{doing}: {why}")]
    Unreachable {
        /// What was asked of the CA.
        doing: &'static str,
        /// The transport's reason.
        why: String,
    },
    /// The CA did not validate the order: its problem for each domain that failed.
    #[error("the CA did not validate the order: {}", list(.0))]
    NotValidated(Vec<(String, Problem)>),
    /// The order ended in a state other than ready, without a problem to say why.
    #[error("the order ended {0}")]
    OrderEnded(String),
    /// The whole exchange took longer than the order deadline.
    #[error(
        "the CA did not complete the exchange within {seconds} s ({})",
        super::ORDER_TIMEOUT_ENV
    )]
    Deadline {
        /// DOKKU_LETSENCRYPT_ORDER_TIMEOUT.
        seconds: u64,
    },
    /// Something on this machine: nginx does not serve the challenge, a DNS record could not
    /// be published, the CA's own HTTPS root cannot be read...
    #[error("{0}")]
    Local(String),
    /// Several apps were tried and these failed (each said why on its own line).
    #[error("{what} failed for {}", .apps.join(", "))]
    Apps {
        /// `letsencrypt:enable` or `renewal`.
        what: &'static str,
        /// The apps that failed, in the order they were tried.
        apps: Vec<String>,
    },
}

/// A CA's problem document: its type (without `urn:ietf:params:acme:error:`) and detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `unauthorized`, `connection`, `rateLimited`, `dns`...
    pub kind: String,
    /// The CA's own words.
    pub detail: String,
}

impl Problem {
    /// From instant-acme's problem document.
    pub(crate) fn from_acme(problem: &instant_acme::Problem) -> Problem {
        let kind = problem
            .r#type
            .as_deref()
            .unwrap_or("unknown")
            .trim_start_matches("urn:ietf:params:acme:error:");
        Problem {
            kind: kind.to_string(),
            detail: problem.detail.as_deref().unwrap_or("no detail").to_string(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

impl From<String> for AcmeError {
    fn from(why: String) -> AcmeError {
        AcmeError::Local(why)
    }
}

impl AcmeError {
    /// instant-acme's error while `doing`: the CA's problem if it sent one.
    pub(crate) fn from_acme(doing: &'static str, error: &instant_acme::Error) -> AcmeError {
        match error {
            instant_acme::Error::Api(problem) => AcmeError::Refused {
                doing,
                problem: Problem::from_acme(problem),
            },
            other => AcmeError::Unreachable {
                doing,
                why: other.to_string(),
            },
        }
    }
}

fn list(problems: &[(String, Problem)]) -> String {
    problems
        .iter()
        .map(|(domain, problem)| format!("{domain}: {problem}"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_says_what_was_done_and_what_the_ca_answered() {
        let problem = Problem {
            kind: "rateLimited".into(),
            detail: "too many orders".into(),
        };
        let refused = AcmeError::Refused {
            doing: "cannot place the order",
            problem: problem.clone(),
        };
        assert_eq!(
            refused.to_string(),
            "cannot place the order: rateLimited: too many orders"
        );
        let invalid = AcmeError::NotValidated(vec![("a.example.com".into(), problem)]);
        assert_eq!(
            invalid.to_string(),
            "the CA did not validate the order: a.example.com: rateLimited: too many orders"
        );
        let wrapped = crate::Error::from(AcmeError::Apps {
            what: "renewal",
            apps: vec!["a".into(), "b".into()],
        });
        assert_eq!(
            wrapped.to_string(),
            "Let's Encrypt: renewal failed for a, b; the previous certificate is still in place"
        );
    }
}
