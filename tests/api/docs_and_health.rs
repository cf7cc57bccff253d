//! What operators and API users open first: health probes, Swagger UI, the
//! OpenAPI document and the GraphQL page.

use serde_json::Value;

use crate::helpers::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn health_docs_and_the_graphql_page_answer() {
    let app = TestApp::serve().await;
    let get = |path: &str| app.http.get(format!("{}{path}", app.address)).send();

    for probe in ["/health/live", "/health/ready"] {
        let response = get(probe).await.unwrap();
        assert_eq!(response.status(), 200, "{probe}");
        assert_eq!(response.json::<Value>().await.unwrap()["status"], "ok");
    }
    let docs = get("/docs").await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(
        docs.text().await.unwrap().contains("swagger"),
        "Swagger UI page"
    );

    let spec: Value = get("/openapi.json").await.unwrap().json().await.unwrap();
    let upload = &spec["paths"]["/api/upload"]["post"]["responses"];
    for status in ["200", "400", "413", "415", "503"] {
        assert!(
            upload.get(status).is_some(),
            "upload documents {status}: {upload}"
        );
    }
    assert!(
        spec["paths"]["/api/job/{job_id}"]["get"]["responses"]
            .get("404")
            .is_some()
    );
    let summary = &spec["components"]["schemas"]["ReceiptResult"]["properties"];
    for field in [
        "receiptId",
        "storeName",
        "totalAmount",
        "items",
        "currency",
        "date",
        "confidence",
    ] {
        assert!(
            summary.get(field).is_some(),
            "ReceiptResult.{field} documented"
        );
    }

    let page = get("/graphql").await.unwrap().text().await.unwrap();
    assert!(
        page.contains("jobStatus") && !page.contains("cdn"),
        "an offline query page"
    );
}
