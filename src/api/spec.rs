//! The OpenAPI document as served (`/openapi.json`, Swagger UI at `/docs`):
//! poem-openapi's, plus what depends on the settings. With API keys on, it
//! declares the `X-Api-Key` scheme and requires it on every `/api/`
//! operation; the request guard is what enforces it, for REST and GraphQL
//! alike, so the handlers' signatures (and the document poem-openapi
//! derives from them) stay the same with keys on or off.

use poem::endpoint::make_sync;
use poem::web::Html;
use poem::{Endpoint, IntoResponse, Route};
use poem_openapi::{OpenApi, OpenApiService};
use serde_json::{Value, json};

use crate::config::ApiKeys;

/// The scheme's name in `components.securitySchemes`.
const SCHEME: &str = "ApiKey";

pub struct Document {
    json: Value,
    text: String,
    swagger_ui: String,
}

impl Document {
    pub fn new<T: OpenApi>(api: &OpenApiService<T, ()>, keys: &ApiKeys) -> Self {
        let derived = api.spec();
        // poem-openapi's own output: always valid JSON.
        let mut json: Value = serde_json::from_str(&derived).unwrap_or(Value::Null);
        if !keys.is_open() {
            require_api_key(&mut json);
        }
        let text = json.to_string();
        // Swagger UI embeds the document verbatim; swap in ours.
        let swagger_ui = api.swagger_ui_html().replacen(&derived, &text, 1);
        Self {
            json,
            text,
            swagger_ui,
        }
    }

    pub fn json(&self) -> &Value {
        &self.json
    }

    /// `GET /openapi.json`.
    pub fn endpoint(&self) -> impl Endpoint + use<> {
        let text = self.text.clone();
        make_sync(move |_| {
            text.clone()
                .with_content_type("application/json; charset=utf-8")
        })
    }

    /// Swagger UI, nested at `/docs`.
    pub fn swagger_ui(&self) -> impl Endpoint + use<> {
        let html = self.swagger_ui.clone();
        Route::new().at("/", make_sync(move |_| Html(html.clone())))
    }
}

fn require_api_key(spec: &mut Value) {
    spec["components"]["securitySchemes"][SCHEME] = json!({
        "type": "apiKey",
        "in": "header",
        "name": "X-Api-Key",
        "description": "One of the server's API_KEYS. A key sees the receipts it uploaded (and unowned ones); an admin key sees all.",
    });
    let Some(paths) = spec["paths"].as_object_mut() else {
        return;
    };
    for (path, operations) in paths.iter_mut() {
        if !path.starts_with("/api/") {
            continue;
        }
        for operation in operations
            .as_object_mut()
            .into_iter()
            .flat_map(|o| o.values_mut())
        {
            operation["security"] = json!([{ SCHEME: [] }]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_keys_every_api_operation_requires_the_scheme() {
        let mut spec = json!({ "paths": {
            "/api/upload": { "post": {} },
            "/health/live": { "get": {} },
        }});
        require_api_key(&mut spec);
        assert_eq!(
            spec["paths"]["/api/upload"]["post"]["security"][0][SCHEME],
            json!([])
        );
        assert!(
            spec["paths"]["/health/live"]["get"]
                .get("security")
                .is_none()
        );
        assert_eq!(
            spec["components"]["securitySchemes"][SCHEME]["name"],
            "X-Api-Key"
        );
    }
}
