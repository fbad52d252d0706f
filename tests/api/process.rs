//! The real `hookvault` binary as a child process, for what only a process shows:
//! exit codes, printed output and a SIGKILL.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct Binary {
    pub child: Child,
    pub address: String,
    /// Everything the process wrote to stderr so far, collected by a thread.
    stderr: mpsc::Receiver<String>,
    stderr_lines: Vec<String>,
}

pub fn command(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookvault"));
    command
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("GITHUB_WEBHOOK_SECRET")
        .env_remove("HOOKVAULT_LISTEN")
        .env_remove("PORT")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

impl Binary {
    /// Starts the command and waits until it says where it listens.
    pub fn start(mut command: Command) -> Self {
        let mut child = command
            .arg("--listen")
            .arg("127.0.0.1:0")
            .spawn()
            .expect("binary starts");
        let (tx, stderr) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut binary = Self {
            child,
            address: String::new(),
            stderr,
            stderr_lines: Vec::new(),
        };
        while binary.address.is_empty() {
            let line = binary
                .stderr
                .recv_timeout(Duration::from_secs(30))
                .expect("the binary logs its listening address");
            if let Some(address) = line.split("address=").nth(1) {
                binary.address = format!("http://{}", address.trim());
            }
            binary.stderr_lines.push(line);
        }
        binary
    }

    /// Everything the process wrote to stderr so far.
    pub fn logged(&mut self) -> String {
        self.stderr_lines.extend(self.stderr.try_iter());
        self.stderr_lines.join("\n")
    }

    /// Stops with SIGTERM and returns (stdout, stderr) of the whole run.
    pub fn terminate(mut self) -> (String, String) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "clean shutdown exits 0, got {status}");
        let mut stdout = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        self.stderr_lines.extend(self.stderr.try_iter());
        std::thread::sleep(Duration::from_millis(100));
        self.stderr_lines.extend(self.stderr.try_iter());
        (stdout, self.stderr_lines.join("\n"))
    }
}

/// A test that fails before it stops its binary must not leave the server running.
impl Drop for Binary {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
