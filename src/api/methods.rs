//! Which methods each path takes, read from the OpenAPI document (plus the
//! routes outside it), so that a 405 can say them in `Allow`.

/// Path templates (`/api/job/{job_id}`) and their methods.
#[derive(Debug, Clone, Default)]
pub struct AllowedMethods(Vec<(Vec<Segment>, String)>);

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Parameter,
}

impl AllowedMethods {
    /// From the paths of an OpenAPI document and `extra` routes given as
    /// `(path, "GET, POST")`. GET paths also take HEAD (poem answers it).
    pub fn new(spec: &serde_json::Value, extra: &[(&str, &str)]) -> Self {
        let mut routes = Vec::new();
        if let Some(paths) = spec["paths"].as_object() {
            for (path, operations) in paths {
                let mut methods: Vec<String> = operations
                    .as_object()
                    .map(|o| o.keys().map(|m| m.to_ascii_uppercase()).collect())
                    .unwrap_or_default();
                if methods.iter().any(|m| m == "GET") {
                    methods.push("HEAD".into());
                }
                methods.sort();
                routes.push((segments(path), methods.join(", ")));
            }
        }
        for (path, methods) in extra {
            routes.push((segments(path), methods.to_string()));
        }
        Self(routes)
    }

    /// The methods `path` takes, if it is one of ours.
    pub fn for_path(&self, path: &str) -> Option<&str> {
        let wanted: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        self.0
            .iter()
            .find(|(template, _)| {
                template.len() == wanted.len()
                    && template.iter().zip(&wanted).all(|(t, w)| match t {
                        Segment::Literal(literal) => literal == w,
                        Segment::Parameter => !w.is_empty(),
                    })
            })
            .map(|(_, methods)| methods.as_str())
    }
}

fn segments(template: &str) -> Vec<Segment> {
    template
        .trim_end_matches('/')
        .split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                Segment::Parameter
            } else {
                Segment::Literal(s.to_string())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_finds_its_templates_methods() {
        let spec = serde_json::json!({ "paths": {
            "/api/job/{job_id}": { "get": {}, "delete": {} },
            "/api/job/{job_id}/retry": { "post": {} },
        }});
        let allowed = AllowedMethods::new(&spec, &[("/graphql", "GET, POST")]);
        assert_eq!(
            allowed.for_path("/api/job/ocr-1"),
            Some("DELETE, GET, HEAD")
        );
        assert_eq!(allowed.for_path("/api/job/ocr-1/retry"), Some("POST"));
        assert_eq!(allowed.for_path("/graphql"), Some("GET, POST"));
        assert_eq!(allowed.for_path("/api/nothing"), None);
    }
}
