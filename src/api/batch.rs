//! The answer to a batch upload (several `file` fields): one entry per
//! file, in request order, with its job or its error as a single upload of
//! that file would have been answered.

use poem_openapi::{Object, Union};
use serde::{Deserialize, Serialize};

use super::errors::{ErrorBody, describe};
use crate::jobs::{ServiceError, UploadAccepted};

/// `POST /api/upload`'s answer: one upload's, or a batch's.
#[derive(Union, Debug)]
#[oai(one_of)]
pub enum UploadAnswer {
    /// One `file` field: the single upload's answer.
    One(Box<UploadAccepted>),
    /// Several `file` fields: one result per file.
    Batch(BatchUploaded),
}

/// The outcome of every file of a batch.
#[derive(Object, Debug, Serialize, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct BatchUploaded {
    /// One entry per `file` field, in the order they were sent.
    pub results: Vec<BatchResult>,
    /// How many files were accepted (duplicates included).
    pub accepted: u32,
    /// How many were refused; nothing was stored for them.
    pub refused: u32,
}

/// One file of a batch.
#[derive(Object, Debug, Serialize, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct BatchResult {
    /// The file's position among the `file` fields, from 0.
    pub index: u32,
    /// The status a single upload of this file would have got.
    pub status: u16,
    /// The accepted upload (as a single upload answers it), when accepted.
    #[oai(skip_serializing_if_is_none, nullable)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<UploadAccepted>,
    /// Why this file was refused, when refused.
    #[oai(skip_serializing_if_is_none, nullable)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl BatchUploaded {
    pub fn new(outcomes: Vec<Result<UploadAccepted, ServiceError>>) -> Self {
        let results: Vec<BatchResult> = outcomes
            .into_iter()
            .enumerate()
            .map(|(index, outcome)| BatchResult::new(index, outcome))
            .collect();
        let accepted = results.iter().filter(|r| r.upload.is_some()).count() as u32;
        Self {
            refused: results.len() as u32 - accepted,
            accepted,
            results,
        }
    }
}

impl BatchResult {
    fn new(index: usize, outcome: Result<UploadAccepted, ServiceError>) -> Self {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        match outcome {
            Ok(upload) => Self {
                index,
                status: 200,
                upload: Some(upload),
                error: None,
            },
            Err(error) => {
                let (code, message) = describe(&error);
                Self {
                    index,
                    status: code.status().as_u16(),
                    upload: None,
                    error: Some(code.body(message).0),
                }
            }
        }
    }
}
