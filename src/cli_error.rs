//! What only the command line can get wrong. The library's [`dokku_certs::Error`] is about
//! certificates, apps and nginx; a flag that does not exist or a missing argument is the
//! binary's business. Either way the user sees one ` !     ` line and exit code 1.

/// A command line that cannot be run, or the library's refusal.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// certs:show with a wrong kind.
    #[error("specify either 'key' or 'crt'")]
    ShowWhat,

    /// A *:report flag that is not one of the report's fields.
    #[error("Invalid flag passed, valid flags: {0}")]
    InvalidFlag(String),

    /// A *:report with more than one flag; the command's name.
    #[error("{0} command allows only a single flag")]
    OneFlagOnly(&'static str),

    /// A *:report with both an info flag and --format.
    #[error("--format flag cannot be specified when specifying an info flag")]
    FormatWithFlag,

    /// A *:report with an unknown format.
    #[error(
        "Invalid --format value specified: {0:?}; use stdout or json (certs:report also takes prometheus)"
    )]
    BadFormat(String),

    /// certs:add with one file that is not a directory.
    #[error(
        "both a CRT and a KEY file are needed: certs:add <app> CRT KEY, or a directory (certs:add <app> DIR), or a tar archive on stdin"
    )]
    OneFileOnly,

    /// Arguments missing or in excess; the text says what to type.
    #[error("{0}")]
    Usage(String),

    /// The library refused.
    #[error(transparent)]
    Lib(#[from] dokku_certs::Error),
}

/// The result of a command.
pub type Result<T, E = CliError> = std::result::Result<T, E>;
