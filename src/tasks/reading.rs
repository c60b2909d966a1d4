//! Reading an object from the learner's cluster for a check, with a reason a learner can act on
//! when it cannot be had.

use kube::api::{Api, DynamicObject, ListParams};
use serde_json::Value;

use super::kinds::ObjectRef;

/// The object as JSON, or why it cannot be had.
pub(super) async fn fetch(client: &kube::Client, of: &ObjectRef) -> Result<Value, String> {
    match of.api(client).get_opt(&of.name).await.map_err(explain)? {
        Some(object) => Ok(serde_json::to_value(object).expect("an object from the API is JSON")),
        None => Err(missing(client, of).await),
    }
}

/// "does not exist", and where an object of that kind and name does exist, since the wrong
/// namespace is the commonest slip.
async fn missing(client: &kube::Client, of: &ObjectRef) -> String {
    let reason = format!("{of} does not exist");
    if of.namespace.is_none() {
        return reason;
    }
    let everywhere: Api<DynamicObject> = Api::all_with(client.clone(), &of.kind.api_resource());
    let params = ListParams::default().fields(&format!("metadata.name={}", of.name));
    let elsewhere: Vec<String> = match everywhere.list(&params).await {
        Ok(list) => list
            .items
            .into_iter()
            .filter_map(|o| o.metadata.namespace)
            .collect(),
        Err(_) => Vec::new(),
    };
    match elsewhere.as_slice() {
        [] => reason,
        [one] => format!("{reason} (there is one in namespace {one})"),
        many => format!("{reason} (there are some in namespaces {})", many.join(", ")),
    }
}

pub(super) fn explain(error: kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("the cluster refused to answer: {}", status.message),
        other => format!("the cluster could not be reached: {other}"),
    }
}
