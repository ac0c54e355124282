//! The console's command-line flags, each with its `IOCRUN_` environment twin: [`ConsoleArgs`]
//! for the start command (flattened in by `cmd/start.rs`) and [`AttachArgs`] for `iocrun attach`.

use std::path::PathBuf;

use super::attach::AttachOptions;
use super::hub::HubConfig;
use super::keys::KeySeq;
use super::logfile::LogConfig;
use super::server::ServerConfig;

/// Where the console socket is when nobody says otherwise.
pub const DEFAULT_SOCKET: &str = "/tmp/iocrun-console.sock";
/// The variable that moves the console socket.
pub const SOCKET_ENV: &str = "IOCRUN_CONSOLE_SOCKET";
/// The variable that sets the read-only console socket.
pub const RO_SOCKET_ENV: &str = "IOCRUN_CONSOLE_RO_SOCKET";

/// Console settings of `iocrun start`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConsoleArgs {
    /// Unix socket for console clients (`iocrun attach`, `socat UNIX-CONNECT:PATH -,raw,echo=0`);
    /// `none` serves no socket.
    #[arg(long, env = SOCKET_ENV, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub console_socket: PathBuf,

    /// Permission bits (octal) of the console socket; connecting needs write permission.
    #[arg(long, env = "IOCRUN_CONSOLE_SOCKET_MODE", value_name = "MODE", default_value = "600", value_parser = parse_mode)]
    pub console_socket_mode: u32,

    /// A second socket whose clients see the console but cannot type into it.
    #[arg(long, env = RO_SOCKET_ENV, value_name = "PATH")]
    pub console_ro_socket: Option<PathBuf>,

    /// Permission bits (octal) of the read-only socket.
    #[arg(long, env = "IOCRUN_CONSOLE_RO_SOCKET_MODE", value_name = "MODE", default_value = "600", value_parser = parse_mode)]
    pub console_ro_socket_mode: u32,

    /// Scrollback replayed to each client on attach, in bytes (suffix K or M; 0 disables).
    #[arg(long, env = "IOCRUN_CONSOLE_HISTORY", value_name = "BYTES", default_value = "256K", value_parser = parse_size)]
    pub console_history: u64,

    /// How far (bytes) a client may fall behind before it is disconnected.
    #[arg(long, env = "IOCRUN_CONSOLE_CLIENT_BUFFER", value_name = "BYTES", default_value = "1M", value_parser = parse_size)]
    pub console_client_buffer: u64,

    /// Also write the console, with a timestamp on each line, to this file.
    #[arg(long, env = "IOCRUN_CONSOLE_LOG", value_name = "FILE")]
    pub console_log: Option<PathBuf>,

    /// Rotate the console log at this size (suffix K or M; 0 never rotates).
    #[arg(long, env = "IOCRUN_CONSOLE_LOG_SIZE", value_name = "BYTES", default_value = "10M", value_parser = parse_size)]
    pub console_log_size: u64,

    /// Rotated console logs to keep (FILE.1 … FILE.N).
    #[arg(
        long,
        env = "IOCRUN_CONSOLE_LOG_KEEP",
        value_name = "N",
        default_value = "3"
    )]
    pub console_log_keep: u32,

    /// Keys never passed to the IOC from any console client, e.g. `^D^C` so a stray Ctrl-D or
    /// Ctrl-C cannot stop softIoc (procServ `-i`).
    #[arg(
        long,
        env = "IOCRUN_CONSOLE_IGNORE",
        value_name = "KEYS",
        default_value = ""
    )]
    pub console_ignore: KeySeq,

    /// Hold back Ctrl-C and Ctrl-D typed by any console client or on iocrun's stdin (either
    /// would stop the IOC) and tell the typist how to leave; `off` passes them to the IOC.
    #[arg(
        long,
        env = "IOCRUN_CONSOLE_GUARD",
        value_name = "on|off",
        default_value = "on",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::Set
    )]
    pub console_guard: bool,

    /// Hold back a typed `exit` (which stops softIoc) until it is typed again within 10 s.
    #[arg(long, env = "IOCRUN_CONSOLE_CONFIRM_EXIT")]
    pub console_confirm_exit: bool,

    /// Forward iocrun's own stdin to the IOC (`auto`; raw mode when it is a terminal) or not.
    #[arg(
        long,
        env = "IOCRUN_CONSOLE_STDIN",
        value_name = "WHEN",
        default_value = "auto"
    )]
    pub console_stdin: StdinMode,
}

/// Whether iocrun's stdin is a console client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StdinMode {
    /// Forward stdin; put it in raw mode when it is a terminal.
    Auto,
    /// Leave stdin alone.
    Off,
}

impl ConsoleArgs {
    /// The hub's settings (stdout mirroring is always on for `start`).
    pub fn hub_config(&self) -> HubConfig {
        HubConfig {
            history_bytes: usize::try_from(self.console_history).unwrap_or(usize::MAX),
            client_buffer: usize::try_from(self.console_client_buffer).unwrap_or(usize::MAX),
            log: self.console_log.clone().map(|path| LogConfig {
                path,
                max_bytes: self.console_log_size,
                keep: self.console_log_keep,
            }),
            ..HubConfig::default()
        }
    }

    /// The socket server's settings.
    pub fn server_config(&self) -> ServerConfig {
        ServerConfig {
            socket: socket_or_none(&self.console_socket),
            socket_mode: self.console_socket_mode,
            ro_socket: self.console_ro_socket.as_deref().and_then(socket_or_none),
            ro_socket_mode: self.console_ro_socket_mode,
            ignore: self.console_ignore.0.clone(),
            stdin: self.console_stdin == StdinMode::Auto,
            confirm_exit: self.console_confirm_exit,
            guard: self.console_guard,
        }
    }
}

/// Flags of `iocrun attach`.
#[derive(Debug, Clone, clap::Args)]
pub struct AttachArgs {
    /// The console socket of the running iocrun.
    #[arg(long, env = "IOCRUN_CONSOLE_SOCKET", value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,

    /// Watch only: nothing typed reaches the IOC.
    #[arg(long)]
    pub read_only: bool,

    /// Key sequence that detaches, as `^]`, `^P^Q` or `ctrl-p,ctrl-q`; empty for none.
    #[arg(
        long,
        env = "IOCRUN_DETACH_KEYS",
        value_name = "KEYS",
        default_value = "^]"
    )]
    pub detach_keys: KeySeq,
}

impl AttachArgs {
    /// The client's options.
    pub fn options(&self) -> AttachOptions {
        AttachOptions {
            socket: self.socket.clone(),
            read_only: self.read_only,
            detach_keys: self.detach_keys.clone(),
        }
    }
}

fn socket_or_none(p: &std::path::Path) -> Option<PathBuf> {
    (!(p.as_os_str().is_empty() || p == std::path::Path::new("none"))).then(|| p.to_owned())
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("'{s}' is not an octal permission mode like 600 or 660"))
}

fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1024),
        Some('M') => (&t[..t.len() - 1], 1024 * 1024),
        _ => (t, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("'{s}' is not a size in bytes (e.g. 65536, 64K, 1M)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        console: ConsoleArgs,
    }

    #[test]
    fn sizes_and_modes() {
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("x").is_err());
        assert_eq!(parse_mode("660"), Ok(0o660));
        assert_eq!(parse_mode("0o600"), Ok(0o600));
        assert!(parse_mode("999").is_err());
        assert!(parse_mode("1777").is_err());
    }

    #[test]
    fn flags_reach_the_configs() {
        let t = T::parse_from([
            "t",
            "--console-socket",
            "/run/c.sock",
            "--console-ro-socket",
            "/run/v.sock",
            "--console-socket-mode",
            "660",
            "--console-history",
            "1K",
            "--console-ignore",
            "^D^C",
        ]);
        let s = t.console.server_config();
        assert_eq!(
            s.socket.as_deref(),
            Some(std::path::Path::new("/run/c.sock"))
        );
        assert_eq!(
            s.ro_socket.as_deref(),
            Some(std::path::Path::new("/run/v.sock"))
        );
        assert_eq!(s.socket_mode, 0o660);
        assert_eq!(s.ignore, vec![4, 3]);
        assert!(s.guard, "the Ctrl-C/Ctrl-D guard is on by default");
        assert_eq!(t.console.hub_config().history_bytes, 1024);
    }

    #[test]
    fn the_guard_turns_off() {
        for off in ["off", "0", "false", "no"] {
            let t = T::parse_from(["t", "--console-guard", off]);
            assert!(!t.console.server_config().guard, "{off}");
        }
    }

    #[test]
    fn none_disables_the_socket() {
        let t = T::parse_from(["t", "--console-socket", "none"]);
        assert!(t.console.server_config().socket.is_none());
    }
}
