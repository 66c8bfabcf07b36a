//! seckill-certs: a development CA and a node certificate for the RPC's mutual TLS, written to a
//! folder (`scripts/dev-up --tls` uses `var/tls`). For development only: the CA's key is thrown
//! away, the node key sits in a file next to the code.
//!
//! ```text
//! seckill-certs var/tls     # writes ca.pem, node.pem, node-key.pem (mode 0600)
//! ```

use std::fs;
use std::path::PathBuf;

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "var/tls".into()));
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca = rpc::DevelopmentCa::new("Seckill development CA")?;
    let node = ca.node()?;
    fs::write(dir.join("ca.pem"), ca.ca_pem())?;
    fs::write(dir.join("node.pem"), &node.cert_pem)?;
    let key = dir.join("node-key.pem");
    fs::write(&key, &node.key_pem)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600))?;
    }
    println!(
        "development TLS files in {}: ca.pem, node.pem, node-key.pem (node name {})",
        dir.display(),
        rpc::security::NODE_NAME
    );
    Ok(())
}
