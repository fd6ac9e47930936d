//! EXPOSE port specifications, `[ip:][hostport:]port[-end][/tcp|udp|sctp]`, read as BuildKit
//! reads them (`dockerfile2llb/convert_expose.go`): each becomes one or more `port/proto`
//! keys of the image config's `ExposedPorts`. The IP and host port are checked and dropped.

use std::net::IpAddr;

use distill_frontend::{Diagnostic, Source, Word};

/// The `port/proto` keys of expanded EXPOSE words, in order (a range gives one key per port).
pub fn exposed_ports(source: &Source, words: &[Word]) -> Result<Vec<String>, Diagnostic> {
    let mut keys = Vec::new();
    for word in words {
        let ports = port_spec(&word.value).map_err(|why| {
            Diagnostic::at(source, word.pos, why).with_hint(
                "write a port, a range or a port with its protocol: 80, 8000-8010, 53/udp",
            )
        })?;
        keys.extend(ports);
    }
    Ok(keys)
}

fn port_spec(raw: &str) -> Result<Vec<String>, String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let (ip, host_port, container) = match parts.as_slice() {
        [container] => ("".to_string(), "", *container),
        [host, container] => ("".to_string(), *host, *container),
        [ip, host, container] => (ip.to_string(), *host, *container),
        [.., host, container] => (parts[..parts.len() - 2].join(":"), *host, *container),
        [] => ("".to_string(), "", ""),
    };
    let (port, proto) = container.split_once('/').unwrap_or((container, ""));
    if port.is_empty() {
        return Err(format!("no port specified: {container}<empty>"));
    }
    let proto = match proto.to_lowercase().as_str() {
        "" | "tcp" => "tcp",
        "udp" => "udp",
        "sctp" => "sctp",
        other => return Err(format!("invalid proto: {other}")),
    };
    if !ip.is_empty() {
        let bare = ip
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
            .unwrap_or(&ip);
        if bare.parse::<IpAddr>().is_err() {
            return Err(format!("invalid IP address: {ip}"));
        }
    }
    let (start, end) = port_range(port).map_err(|_| format!("invalid containerPort: {port}"))?;
    if !host_port.is_empty() {
        let (host_start, host_end) =
            port_range(host_port).map_err(|_| format!("invalid hostPort: {host_port}"))?;
        if end - start != host_end - host_start && end != start {
            return Err(format!(
                "invalid ranges specified for container and host Ports: {port} and {host_port}"
            ));
        }
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

/// `8000` or `8000-8010`: 16-bit numbers, the end not below the start.
fn port_range(text: &str) -> Result<(u32, u32), ()> {
    let number = |s: &str| {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(());
        }
        s.parse::<u16>().map(u32::from).map_err(|_| ())
    };
    match text.split_once('-') {
        None => number(text).map(|p| (p, p)),
        Some((start, end)) => {
            let (start, end) = (number(start)?, number(end)?);
            if end < start {
                return Err(());
            }
            Ok((start, end))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_protocols_and_ranges() {
        assert_eq!(port_spec("80"), Ok(vec!["80/tcp".to_string()]));
        assert_eq!(port_spec("53/UDP"), Ok(vec!["53/udp".to_string()]));
        assert_eq!(
            port_spec("8000-8002/sctp"),
            Ok(vec![
                "8000/sctp".into(),
                "8001/sctp".into(),
                "8002/sctp".into()
            ])
        );
        assert_eq!(
            port_spec("127.0.0.1:8080:80"),
            Ok(vec!["80/tcp".to_string()])
        );
        assert_eq!(port_spec("[::1]:8080:80"), Ok(vec!["80/tcp".to_string()]));
        assert_eq!(port_spec("9000-9001:80"), Ok(vec!["80/tcp".to_string()]));
    }

    #[test]
    fn rejects_what_buildkit_rejects() {
        assert_eq!(port_spec("80/http"), Err("invalid proto: http".into()));
        assert_eq!(port_spec("http"), Err("invalid containerPort: http".into()));
        assert_eq!(
            port_spec("70000"),
            Err("invalid containerPort: 70000".into())
        );
        assert_eq!(
            port_spec("90-80"),
            Err("invalid containerPort: 90-80".into())
        );
        assert_eq!(
            port_spec("/tcp"),
            Err("no port specified: /tcp<empty>".into())
        );
        assert_eq!(port_spec("x:80:80"), Err("invalid IP address: x".into()));
        assert_eq!(port_spec("a:80"), Err("invalid hostPort: a".into()));
        assert_eq!(
            port_spec("1-2:80-82"),
            Err("invalid ranges specified for container and host Ports: 80-82 and 1-2".into())
        );
    }
}
