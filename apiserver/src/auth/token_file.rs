//! Static bearer tokens from `--token-auth-file`: CSV lines `token,user,uid,"group1,group2"`.

use std::{collections::HashMap, path::Path};

use super::{user::UserInfo, AuthError};

/// The tokens of the file, by token.
#[derive(Debug, Default)]
pub struct TokenFile {
    tokens: HashMap<String, UserInfo>,
}

impl TokenFile {
    pub fn load(path: &Path) -> Result<TokenFile, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        TokenFile::parse(&text).map_err(|why| AuthError::Invalid {
            path: path.to_path_buf(),
            why,
        })
    }

    pub fn parse(text: &str) -> Result<TokenFile, String> {
        let mut tokens = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = split_csv(line);
            if fields.len() < 3 {
                return Err(format!("line {}: need at least token,user,uid", n + 1));
            }
            if fields[0].is_empty() || fields[1].is_empty() {
                return Err(format!("line {}: empty token or user", n + 1));
            }
            let groups = fields
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            tokens.insert(
                fields[0].clone(),
                UserInfo {
                    name: fields[1].clone(),
                    uid: fields[2].clone(),
                    groups,
                    ..Default::default()
                },
            );
        }
        Ok(TokenFile { tokens })
    }

    pub fn authenticate(&self, token: &str) -> Option<UserInfo> {
        self.tokens.get(token).cloned()
    }
}

/// Splits one CSV line, honouring double quotes (`""` is a quote inside a quoted field).
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoted_groups() {
        let f = TokenFile::parse("# comment\nt1,alice,1,\"dev,ops\"\nt2,bob,2\n").unwrap();
        let a = f.authenticate("t1").unwrap();
        assert_eq!((a.name.as_str(), a.uid.as_str()), ("alice", "1"));
        assert_eq!(a.groups, vec!["dev", "ops"]);
        assert!(f.authenticate("t2").unwrap().groups.is_empty());
        assert!(f.authenticate("t3").is_none());
        assert!(TokenFile::parse("t1,alice").is_err());
    }
}
