//! The crawl function. Three kinds of event:
//!
//! - `{ "target": "s3://bucket/prefix/", "database": "db", "exclude"?: [...] }`: crawl it;
//! - an EventBridge scheduled event; its `detail.targets` (same shape) say what to crawl, or,
//!   when absent, `QUARRY_CRAWL_TARGETS`;
//! - an S3 notification (`ObjectCreated:*`, `ObjectRemoved:*`): only the folders of the named
//!   objects are crawled, each under the configured target that contains it (Glue's S3-event
//!   crawl mode). Objects under no target are listed in the answer as `ignored`.
//!
//! The answer holds one crawl report per target.

use std::collections::BTreeMap;

use aws_lambda_events::event::s3::S3Event;
use object_store::path::Path as ObjectPath;
use quarry_crawler::{CrawlConfig, CrawlReport, Crawler};
use quarry_lake::Location;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{FunctionError, Resources, object_url};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrawlTarget {
    pub target: String,
    pub database: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

/// What an event asks the crawl function to do.
#[derive(Debug, Clone, PartialEq)]
pub enum CrawlRequest {
    /// Crawl these targets whole.
    Targets(Vec<CrawlTarget>),
    /// Crawl these folders (object URLs' parents) under their targets, and report the object
    /// URLs that lie under no target.
    Folders {
        folders: Vec<(CrawlTarget, Vec<String>)>,
        ignored: Vec<String>,
    },
}

#[derive(Deserialize)]
struct ScheduleDetail {
    #[serde(default)]
    targets: Option<Vec<CrawlTarget>>,
}

/// Classify `event` against the configured targets.
pub fn parse(event: Value, configured: &[CrawlTarget]) -> Result<CrawlRequest, FunctionError> {
    if event.get("Records").is_some() {
        let s3: S3Event = serde_json::from_value(event)
            .map_err(|e| FunctionError::BadEvent(format!("S3 notification: {e}")))?;
        let mut by_target: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        let mut ignored = Vec::new();
        for r in &s3.records {
            let Some(url) = object_url(r) else {
                continue;
            };
            // The most specific target that holds the object.
            let target = configured
                .iter()
                .enumerate()
                .filter(|(_, t)| url.starts_with(&folder(&t.target)))
                .max_by_key(|(_, t)| t.target.len());
            match target {
                Some((i, _)) => {
                    let parent = url.rsplit_once('/').map_or(url.as_str(), |(p, _)| p);
                    let folders = by_target.entry(i).or_default();
                    let parent = format!("{parent}/");
                    if !folders.contains(&parent) {
                        folders.push(parent);
                    }
                }
                None => ignored.push(url),
            }
        }
        if by_target.is_empty() && ignored.is_empty() {
            return Err(FunctionError::BadEvent(
                "S3 notification without objects".into(),
            ));
        }
        return Ok(CrawlRequest::Folders {
            folders: by_target
                .into_iter()
                .map(|(i, f)| (configured[i].clone(), f))
                .collect(),
            ignored,
        });
    }
    if event.get("detail-type").is_some() {
        let detail: ScheduleDetail =
            serde_json::from_value(event.get("detail").cloned().unwrap_or(json!({})))
                .map_err(|e| FunctionError::BadEvent(format!("EventBridge detail: {e}")))?;
        let targets = detail.targets.unwrap_or_else(|| configured.to_vec());
        if targets.is_empty() {
            return Err(FunctionError::Config(
                "a scheduled crawl needs detail.targets in the rule's input or QUARRY_CRAWL_TARGETS"
                    .into(),
            ));
        }
        return Ok(CrawlRequest::Targets(targets));
    }
    let target: CrawlTarget = serde_json::from_value(event).map_err(|e| {
        FunctionError::BadEvent(format!(
            "{e}; expected {{\"target\": \"s3://bucket/prefix/\", \"database\": \"db\"}}, an EventBridge schedule or an S3 notification"
        ))
    })?;
    Ok(CrawlRequest::Targets(vec![target]))
}

fn folder(url: &str) -> String {
    format!("{}/", url.trim_end_matches('/'))
}

async fn crawl_one(
    res: &Resources,
    target: &CrawlTarget,
    folders: Option<&[String]>,
) -> Result<CrawlReport, FunctionError> {
    let loc = Location::parse_with(&target.target, res.stores.s3_options().to_vec())
        .map_err(quarry_crawler::Error::from)?;
    let mut config = CrawlConfig::new(&target.database);
    config.exclude = target.exclude.clone();
    let crawler = Crawler::new(res.catalog.clone(), config);
    Ok(match folders {
        None => crawler.crawl(&loc).await?,
        Some(urls) => {
            let root = loc.root_url();
            // Keys verbatim, as S3 names them (no re-encoding).
            let paths = urls
                .iter()
                .map(|u| {
                    let rel = u.strip_prefix(&root).unwrap_or(u).trim_end_matches('/');
                    ObjectPath::parse(format!("{}/{rel}", loc.prefix)).map_err(|e| {
                        FunctionError::Object {
                            object: u.clone(),
                            reason: e.to_string(),
                            retryable: false,
                        }
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            crawler.crawl_folders(&loc, &paths).await?
        }
    })
}

/// Run the crawls `request` asks for; one report per target.
pub async fn run(res: &Resources, request: CrawlRequest) -> Result<Value, FunctionError> {
    let mut reports = Vec::new();
    let mut ignored = Vec::new();
    match request {
        CrawlRequest::Targets(targets) => {
            for t in &targets {
                reports.push(crawl_one(res, t, None).await?);
            }
        }
        CrawlRequest::Folders {
            folders,
            ignored: i,
        } => {
            ignored = i;
            for (t, f) in &folders {
                reports.push(crawl_one(res, t, Some(f)).await?);
            }
        }
    }
    Ok(json!({
        "reports": reports,
        "ignored": ignored,
    }))
}

pub async fn handle(res: &Resources, event: Value) -> Result<Value, FunctionError> {
    let request = parse(event, &res.settings.crawl_targets)?;
    run(res, request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(t: &str, db: &str) -> CrawlTarget {
        CrawlTarget {
            target: t.into(),
            database: db.into(),
            exclude: Vec::new(),
        }
    }

    #[test]
    fn schedules_name_their_targets_or_fall_back_to_the_configured_ones() {
        let configured = [target("s3://lake/a/", "a")];
        let named = json!({
            "version": "0", "detail-type": "Scheduled Event", "source": "aws.events",
            "detail": {"targets": [{"target": "s3://lake/b/", "database": "b"}]}
        });
        assert_eq!(
            parse(named, &configured).expect("parse"),
            CrawlRequest::Targets(vec![target("s3://lake/b/", "b")])
        );
        let bare = json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
        assert_eq!(
            parse(bare.clone(), &configured).expect("parse"),
            CrawlRequest::Targets(configured.to_vec())
        );
        assert!(matches!(parse(bare, &[]), Err(FunctionError::Config(_))));
    }

    #[test]
    fn s3_objects_go_to_the_most_specific_target_folder_by_folder() {
        let configured = [
            target("s3://lake/", "all"),
            target("s3://lake/sales", "sales"),
        ];
        let sample: Value =
            serde_json::from_str(include_str!("../events/s3-object-created.json")).expect("json");
        let record = |key: &str| {
            let mut r = sample["Records"][0].clone();
            r["s3"]["bucket"]["name"] = json!("lake");
            r["s3"]["object"]["key"] = json!(key);
            r
        };
        let event = json!({"Records": [
            record("sales/dt%3D1/a.csv"), record("sales/dt%3D1/b.csv"),
            record("logs/x.json"), record("elsewhere")
        ]});
        let mut other = event.clone();
        other["Records"][3]["s3"]["bucket"]["name"] = json!("other");
        match parse(other, &configured).expect("parse") {
            CrawlRequest::Folders { folders, ignored } => {
                assert_eq!(
                    folders,
                    vec![
                        (configured[0].clone(), vec!["s3://lake/logs/".to_string()]),
                        (
                            configured[1].clone(),
                            vec!["s3://lake/sales/dt=1/".to_string()]
                        ),
                    ]
                );
                assert_eq!(ignored, ["s3://other/elsewhere"]);
            }
            other => panic!("{other:?}"),
        }
    }
}
