// @generated automatically by Diesel CLI.

diesel::table! {
    receipt_items (receipt_id, position) {
        receipt_id -> Uuid,
        position -> Int4,
        name -> Text,
        quantity -> Numeric,
        unit_price -> Numeric,
        line_total -> Numeric,
        bbox -> Nullable<Jsonb>,
    }
}

diesel::table! {
    receipts (id) {
        id -> Uuid,
        job_id -> Text,
        status -> Text,
        store_name -> Nullable<Text>,
        total_amount -> Nullable<Numeric>,
        currency -> Nullable<Text>,
        purchase_date -> Nullable<Date>,
        raw_text -> Nullable<Text>,
        ocr_confidence -> Nullable<Float4>,
        confidence -> Nullable<Float4>,
        field_confidence -> Nullable<Jsonb>,
        blob_key -> Text,
        content_type -> Text,
        content_hash -> Text,
        failed_reason -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        subtotal -> Nullable<Numeric>,
        tax -> Nullable<Numeric>,
        tip -> Nullable<Numeric>,
        payment_method -> Nullable<Text>,
        purchase_time -> Nullable<Time>,
        address -> Nullable<Text>,
        phone -> Nullable<Text>,
        field_boxes -> Nullable<Jsonb>,
        ocr_engines -> Nullable<Jsonb>,
        cancelled_at -> Nullable<Timestamptz>,
        callback_url -> Nullable<Text>,
        owner -> Nullable<Text>,
        image_removed_at -> Nullable<Timestamptz>,
        shared -> Bool,
        run -> Int4,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> Int8,
        delivery_id -> Uuid,
        attempt -> Int4,
        attempted_at -> Timestamptz,
        status_code -> Nullable<Int4>,
        duration_ms -> Int4,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Uuid,
        job_id -> Text,
        receipt_id -> Uuid,
        event -> Text,
        url -> Text,
        payload -> Jsonb,
        state -> Text,
        created_at -> Timestamptz,
        queued_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(receipt_items -> receipts (receipt_id));
diesel::joinable!(webhook_attempts -> webhook_deliveries (delivery_id));
diesel::joinable!(webhook_deliveries -> receipts (receipt_id));

diesel::allow_tables_to_appear_in_same_query!(
    receipt_items,
    receipts,
    webhook_attempts,
    webhook_deliveries,
);
