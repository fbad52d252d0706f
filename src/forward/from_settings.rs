//! Targets from the `HOOKVAULT_FORWARD` setting: one per URL, with the defaults.

use super::target::TargetSpec;

/// The targets of `HOOKVAULT_FORWARD`, named after their host, port and path
/// (`10.0.0.5-8080-github-webhook`), so a name stays with its URL when the list
/// changes.
pub fn settings_targets(urls: &[String]) -> anyhow::Result<Vec<TargetSpec>> {
    let mut specs: Vec<TargetSpec> = Vec::new();
    for url in urls {
        let parsed = reqwest::Url::parse(url).map_err(|e| anyhow::anyhow!("{url:?}: {e}"))?;
        let mut slug = String::new();
        let place = format!(
            "{}-{}-{}",
            parsed.host_str().unwrap_or("target"),
            parsed.port_or_known_default().unwrap_or(0),
            parsed.path()
        );
        for c in place.chars() {
            let c = if c.is_ascii_alphanumeric() || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '-'
            };
            if !(c == '-' && (slug.is_empty() || slug.ends_with('-'))) {
                slug.push(c);
            }
        }
        let mut name: String = slug.trim_end_matches('-').chars().take(56).collect();
        let base = name.clone();
        let mut n = 2;
        while specs.iter().any(|s| s.name == name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        let spec = TargetSpec::for_url(name, url.clone());
        spec.check().map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
        specs.push(spec);
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_targets_are_named_after_their_place() {
        let urls = [
            "http://10.0.0.5:8080/github-webhook/".to_owned(),
            "https://Jenkins.lan/hook".to_owned(),
            "http://10.0.0.5:8080/github-webhook".to_owned(),
        ];
        let names: Vec<String> = settings_targets(&urls)
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(
            names,
            [
                "10.0.0.5-8080-github-webhook",
                "jenkins.lan-443-hook",
                "10.0.0.5-8080-github-webhook-2"
            ]
        );
        assert!(settings_targets(&["http://169.254.169.254/".to_owned()]).is_err());
        assert!(settings_targets(&["not a url".to_owned()]).is_err());
    }
}
