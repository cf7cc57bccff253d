//! What one GraphQL request may cost, checked before anything runs: the
//! query's size before it is parsed, its aliases once parsed, its depth and
//! complexity after validation. Each refusal is a GraphQL error whose
//! `extensions.code` names the limit and whose message gives the setting.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Positioned, ServerError, ServerResult, ValidationResult, Variables};

use crate::config::GraphqlLimits;

/// The extension that enforces [`GraphqlLimits`].
pub struct QueryLimits(pub GraphqlLimits);

impl ExtensionFactory for QueryLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(QueryLimitsCheck(self.0.clone()))
    }
}

struct QueryLimitsCheck(GraphqlLimits);

#[async_trait::async_trait]
impl Extension for QueryLimitsCheck {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let limits = &self.0;
        if query.len() > limits.max_query_bytes {
            return Err(limit_error(
                "query_too_large",
                format!(
                    "The query is {} bytes; the limit is {} (GRAPHQL_MAX_QUERY_BYTES). Send a shorter query.",
                    query.len(),
                    limits.max_query_bytes
                ),
            ));
        }
        let document = next.run(ctx, query, variables).await?;
        let aliases = count_aliases(&document);
        if aliases > limits.max_aliases {
            return Err(limit_error(
                "too_many_aliases",
                format!(
                    "The query has {aliases} aliased fields; the limit is {} (GRAPHQL_MAX_ALIASES). Split it into several requests.",
                    limits.max_aliases
                ),
            ));
        }
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let limits = &self.0;
        let validated = next.run(ctx).await?;
        if validated.depth > limits.max_depth {
            return Err(vec![limit_error(
                "query_too_deep",
                format!(
                    "The query nests {} levels deep; the limit is {} (GRAPHQL_MAX_DEPTH).",
                    validated.depth, limits.max_depth
                ),
            )]);
        }
        if validated.complexity > limits.max_complexity {
            return Err(vec![limit_error(
                "query_too_complex",
                format!(
                    "The query costs {}; the limit is {} (GRAPHQL_MAX_COMPLEXITY; a field costs 1, a lookup 10, a listing its page size times its selection). Ask for fewer fields or a smaller page.",
                    validated.complexity, limits.max_complexity
                ),
            )]);
        }
        Ok(validated)
    }
}

/// A GraphQL error with `code` in its extensions.
pub fn limit_error(code: &str, message: String) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", code);
    error.extensions = Some(extensions);
    error
}

/// Aliased fields in every operation and fragment of the document.
fn count_aliases(document: &ExecutableDocument) -> usize {
    // An explicit stack: the walk must not recurse as deep as a hostile
    // query nests.
    let mut pending: Vec<&Positioned<SelectionSet>> = document
        .operations
        .iter()
        .map(|(_, operation)| &operation.node.selection_set)
        .chain(
            document
                .fragments
                .values()
                .map(|fragment| &fragment.node.selection_set),
        )
        .collect();
    let mut aliases = 0;
    while let Some(set) = pending.pop() {
        for selection in &set.node.items {
            match &selection.node {
                Selection::Field(field) => {
                    aliases += usize::from(field.node.alias.is_some());
                    pending.push(&field.node.selection_set);
                }
                Selection::InlineFragment(fragment) => pending.push(&fragment.node.selection_set),
                Selection::FragmentSpread(_) => {}
            }
        }
    }
    aliases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_counted_in_operations_fragments_and_nested_selections() {
        let query = "query { a: jobStatus(jobId: \"x\") { id } ...F ... on QueryRoot { b: queue { c: paused } } }
                     fragment F on QueryRoot { d: queue { paused } }";
        let document = async_graphql::parser::parse_query(query).expect("a valid document");
        assert_eq!(count_aliases(&document), 4);
    }
}
