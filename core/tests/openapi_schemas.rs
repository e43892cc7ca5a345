//! The `openapi` feature: the wire types describe themselves as OpenAPI 3.1 schemas
//! that match their serde JSON.
#![cfg(feature = "openapi")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{Value, json};
use sotto_core::api::{
    ClientFrame, Device, KeysQueryResponse, Message, MessageListQuery, Page, PageQuery,
    PatchUserRequest, Problem, RoomDetails, ServerFrame, TokenResponse, UnreadResponse,
    UserSearchQuery,
};
use sotto_core::encoding::B64;
use sotto_core::keys::DeviceBundle;
use sotto_core::suite::Suite;
use utoipa::openapi::path::ParameterIn;
use utoipa::{IntoParams, OpenApi};

#[derive(OpenApi)]
#[openapi(components(schemas(
    Problem,
    DeviceBundle,
    TokenResponse,
    B64,
    Suite,
    Message,
    Page<Device>,
    KeysQueryResponse,
    UnreadResponse,
    RoomDetails,
    PatchUserRequest,
    ClientFrame,
    ServerFrame,
)))]
struct Doc;

fn schemas() -> Value {
    let doc = serde_json::to_value(Doc::openapi()).unwrap();
    doc["components"]["schemas"].clone()
}

#[test]
fn document_contains_the_listed_schemas_and_their_dependencies() {
    let schemas = schemas();
    for name in [
        "Problem",
        "DeviceBundle",
        "TokenResponse",
        "B64",
        "Suite",
        // Reached through references only.
        "User",
        "Role",
        "Room",
        "RoomMember",
        "ReceiptKind",
        "RoomChange",
    ] {
        assert!(
            schemas.get(name).is_some(),
            "missing schema {name}: {schemas:#}"
        );
    }
}

#[test]
fn b64_is_a_base64url_string() {
    let schemas = schemas();
    let b64 = &schemas["B64"];
    assert_eq!(b64["type"], "string", "{b64:#}");
    assert_eq!(b64["contentEncoding"], "base64url");
    assert_eq!(b64["format"], "base64url");
    assert!(
        b64["description"]
            .as_str()
            .unwrap()
            .contains("base64url without padding")
    );
    let bundle = &schemas["DeviceBundle"];
    assert_eq!(
        bundle["properties"]["identity_key"]["$ref"], "#/components/schemas/B64",
        "{bundle:#}"
    );
    assert_eq!(bundle["properties"]["user_id"]["format"], "uuid");
    assert_eq!(bundle["additionalProperties"], false);
    let required = bundle["required"].as_array().unwrap();
    assert!(required.contains(&json!("identity_signature")));
    assert!(!required.contains(&json!("rsa_key")));
}

#[test]
fn field_names_and_formats_follow_serde() {
    let schemas = schemas();
    let problem = &schemas["Problem"]["properties"];
    assert!(problem.get("type").is_some(), "{problem:#}");
    assert!(problem.get("r#type").is_none());
    assert!(
        schemas["Problem"]["required"]
            .as_array()
            .unwrap()
            .contains(&json!("type"))
    );

    // `next_cursor` is always present, `null` on the last page.
    let page = &schemas["Page_Device"];
    assert!(
        page["required"]
            .as_array()
            .unwrap()
            .contains(&json!("next_cursor")),
        "{page:#}"
    );
    // utoipa composes a generic's argument inline (or by reference).
    let item = &page["properties"]["items"]["items"];
    assert!(
        item["$ref"] == "#/components/schemas/Device"
            || item["properties"]["bundle"]["$ref"] == "#/components/schemas/DeviceBundle",
        "{page:#}"
    );

    let user = &schemas["User"];
    assert_eq!(
        user["properties"]["created_at"]["type"], "string",
        "{user:#}"
    );
    assert_eq!(user["properties"]["created_at"]["format"], "date-time");
    assert!(
        user["required"]
            .as_array()
            .unwrap()
            .contains(&json!("display_name"))
    );

    let token = &schemas["TokenResponse"]["properties"];
    assert_eq!(
        token["user"]["$ref"], "#/components/schemas/User",
        "{token:#}"
    );

    assert_eq!(schemas["Suite"]["enum"], json!(["x25519", "rsa"]));

    let text = schemas.to_string();
    assert!(text.contains("\"keys_changed\""), "{text}");
    assert!(text.contains("\"member_added\""), "{text}");
}

#[test]
fn query_types_are_query_parameters() {
    let params = PageQuery::into_params(|| None);
    let names: Vec<_> = params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["limit", "cursor"]);
    assert!(params.iter().all(|p| p.parameter_in == ParameterIn::Query));

    let params = UserSearchQuery::into_params(|| None);
    let q = params.iter().find(|p| p.name == "q").unwrap();
    let limit = params.iter().find(|p| p.name == "limit").unwrap();
    let required = |p: &utoipa::openapi::path::Parameter| {
        serde_json::to_value(p).unwrap()["required"] == json!(true)
    };
    assert!(required(q) && !required(limit));

    let params = MessageListQuery::into_params(|| None);
    assert_eq!(params.len(), 2);
}

#[test]
fn print_schemas() {
    // Run with `--nocapture` to see the whole `components.schemas`.
    println!("{:#}", schemas());
}
