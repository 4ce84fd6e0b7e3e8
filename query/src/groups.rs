//! Partial aggregation over tiny group keys: one-byte strings, booleans and 8-bit integers
//! (flags and codes such as TPC-H's `l_returnflag` / `l_linestatus`), grouped through a
//! directly indexed table instead of a hash table.
//!
//! Each key column maps a row to a small code (NULL, the empty string, or the byte), the codes of
//! up to three columns combine into one slot of a table of at most 2^18 entries, and the
//! slot holds the group's index. No hashing, no key comparison: two loads per row and column. The
//! aggregates are DataFusion's own groups accumulators, fed the group indices as its hash
//! aggregation would feed them, so every result is computed by the same code.
//!
//! Whether the keys are tiny is known only from the data. The first batch with a longer string
//! hands the rest of the partition to DataFusion's own partial aggregation, after emitting the
//! groups gathered so far: a partial aggregate may emit the same group more than once, the final
//! aggregate merges them. The same emission keeps memory within the pool when many aggregates
//! over many groups outgrow it.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, GenericStringArray, Int8Array,
    Int64Array, LargeStringArray, OffsetSizeTrait, StringArray, StringViewArray, UInt8Array,
    UInt64Array,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, Int8Type, Schema, SchemaRef, UInt8Type,
};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result, ScalarValue, internal_err};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::{
    ChildStats, DisplayAs, DisplayFormatType, ExecutionPlan, InputOrderMode, PlanProperties,
    Statistics, StatisticsArgs, StatisticsContext,
};
use futures::StreamExt;

/// The largest direct table (slots of `u32`, 1 MiB): two string or 8-bit keys and a boolean.
const MAX_SLOTS: usize = 1 << 18;

/// Replaces DataFusion's partial hash aggregation by [`TinyKeyAggregateExec`] where every group
/// key is a string, boolean or 8-bit integer expression and the aggregates are plain (not
/// DISTINCT, not ordered) ones with groups accumulators. Whether the strings are one byte long is
/// found out at run time. `QUARRY_TINY_KEYS=false` turns it off (kept for measuring).
#[derive(Debug, Default)]
pub struct TinyKeyGroups;

impl PhysicalOptimizerRule for TinyKeyGroups {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        if !*ENABLED.get_or_init(|| std::env::var("QUARRY_TINY_KEYS").as_deref() != Ok("false")) {
            return Ok(plan);
        }
        plan.transform_up(|node| {
            let Some(agg) = node.downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            match tiny_keys(agg)? {
                Some(keys) => Ok(Transformed::yes(Arc::new(TinyKeyAggregateExec::new(
                    Arc::clone(&node),
                    keys,
                )?)
                    as Arc<dyn ExecutionPlan>)),
                None => Ok(Transformed::no(node)),
            }
        })
        .data()
    }

    fn name(&self) -> &str {
        "tiny_key_groups"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The kinds of key column with a small domain, and their codes: 0 is NULL; strings have 1 for
/// the empty string and 2 + byte for one byte; booleans 1 + value; 8-bit integers 1 + the
/// value's byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Utf8,
    LargeUtf8,
    Utf8View,
    Boolean,
    Int8,
    UInt8,
}

impl Key {
    fn of(data_type: &DataType) -> Option<Key> {
        Some(match data_type {
            DataType::Utf8 => Key::Utf8,
            DataType::LargeUtf8 => Key::LargeUtf8,
            DataType::Utf8View => Key::Utf8View,
            DataType::Boolean => Key::Boolean,
            DataType::Int8 => Key::Int8,
            DataType::UInt8 => Key::UInt8,
            _ => return None,
        })
    }

    fn domain(self) -> usize {
        match self {
            Key::Utf8 | Key::LargeUtf8 | Key::Utf8View => 258,
            Key::Boolean => 3,
            Key::Int8 | Key::UInt8 => 257,
        }
    }
}

/// The key kinds of a partial aggregation this operator can take, or `None`.
fn tiny_keys(agg: &AggregateExec) -> Result<Option<Vec<Key>>> {
    let group_by = agg.group_expr();
    if *agg.mode() != AggregateMode::Partial
        || !group_by.is_single()
        || group_by.expr().is_empty()
        || group_by.expr().len() > 3
        || agg.limit_options().is_some()
        || *agg.input_order_mode() != InputOrderMode::Linear
        || !agg.aggr_expr().iter().all(|a| {
            !a.is_distinct() && a.order_bys().is_empty() && a.groups_accumulator_supported()
        })
    {
        return Ok(None);
    }
    let schema = agg.input_schema();
    let mut keys = Vec::new();
    for (expr, _) in group_by.expr() {
        match Key::of(&expr.data_type(&schema)?) {
            Some(key) => keys.push(key),
            None => return Ok(None),
        }
    }
    // A string column whose statistics hold a longer value (`Supplier#000000001`) is not tiny:
    // DataFusion's operator from the start.
    let statistics =
        StatisticsContext::new().compute(agg.input().as_ref(), &StatisticsArgs::new())?;
    for (expr, _) in group_by.expr() {
        let Some(column) = expr.downcast_ref::<Column>() else {
            continue;
        };
        let Some(stats) = statistics.column_statistics.get(column.index()) else {
            continue;
        };
        let longer = |value: &Precision<ScalarValue>| {
            value
                .get_value()
                .and_then(|v| v.try_as_str().flatten())
                .is_some_and(|text| text.len() > 1)
        };
        if longer(&stats.min_value) || longer(&stats.max_value) {
            return Ok(None);
        }
    }
    let slots = keys.iter().map(|k| k.domain()).product::<usize>();
    Ok((slots <= MAX_SLOTS).then_some(keys))
}

/// Adds `code * stride` to `out[i]` for each row of a key column; `false` as soon as a value
/// has no code (a string longer than one byte).
fn add_codes(key: Key, array: &dyn Array, stride: u32, out: &mut [u32]) -> bool {
    let nulls = array.logical_nulls();
    let valid = |i: usize| nulls.as_ref().is_none_or(|n| n.is_valid(i));
    match key {
        Key::Utf8View => {
            let views = array.as_string_view().views();
            // The low 32 bits of a view are the length; a string of up to 12 bytes is inline
            // from bit 32 on, zero-padded.
            if nulls.is_none() {
                if views.iter().any(|v| *v as u32 > 1) {
                    return false;
                }
                for (o, v) in out.iter_mut().zip(views.iter()) {
                    let len = *v as u32;
                    *o += stride * (1 + len * (1 + u32::from((v >> 32) as u8)));
                }
            } else {
                for (i, (o, v)) in out.iter_mut().zip(views.iter()).enumerate() {
                    if valid(i) {
                        let len = *v as u32;
                        if len > 1 {
                            return false;
                        }
                        *o += stride * (1 + len * (1 + u32::from((v >> 32) as u8)));
                    }
                }
            }
        }
        Key::Utf8 => return add_string_codes(array.as_string::<i32>(), &valid, stride, out),
        Key::LargeUtf8 => {
            return add_string_codes(array.as_string::<i64>(), &valid, stride, out);
        }
        Key::Boolean => {
            let a = array.as_boolean();
            for (i, o) in out.iter_mut().enumerate() {
                if valid(i) {
                    *o += stride * (1 + u32::from(a.value(i)));
                }
            }
        }
        Key::Int8 => {
            let a = array.as_primitive::<Int8Type>().values();
            for (i, (o, v)) in out.iter_mut().zip(a.iter()).enumerate() {
                if valid(i) {
                    *o += stride * (1 + u32::from(*v as u8));
                }
            }
        }
        Key::UInt8 => {
            let a = array.as_primitive::<UInt8Type>().values();
            for (i, (o, v)) in out.iter_mut().zip(a.iter()).enumerate() {
                if valid(i) {
                    *o += stride * (1 + u32::from(*v));
                }
            }
        }
    }
    true
}

fn add_string_codes<O: OffsetSizeTrait>(
    array: &GenericStringArray<O>,
    valid: &dyn Fn(usize) -> bool,
    stride: u32,
    out: &mut [u32],
) -> bool {
    let (offsets, values) = (array.value_offsets(), array.value_data());
    for (i, (o, w)) in out.iter_mut().zip(offsets.windows(2)).enumerate() {
        if valid(i) {
            *o += stride
                * match (w[1] - w[0]).as_usize() {
                    0 => 1,
                    1 => 2 + u32::from(values[w[0].as_usize()]),
                    _ => return false,
                };
        }
    }
    true
}

/// The key column of `codes` (one per group) back as an array of `key`'s type.
fn decode(key: Key, codes: impl Iterator<Item = u32>) -> Result<ArrayRef> {
    fn text(code: u32) -> Result<Option<String>> {
        Ok(match code {
            0 => None,
            1 => Some(String::new()),
            c => {
                // A one-byte string of a valid UTF-8 array is ASCII.
                let byte = (c - 2) as u8;
                if !byte.is_ascii() {
                    return internal_err!("tiny key: a one-byte string that is not ASCII");
                }
                Some(char::from(byte).to_string())
            }
        })
    }
    let value = |c: u32| c.checked_sub(1).map(|v| v as u8);
    Ok(match key {
        Key::Utf8View | Key::Utf8 | Key::LargeUtf8 => {
            let texts = codes.map(text).collect::<Result<Vec<_>>>()?;
            match key {
                Key::Utf8View => Arc::new(StringViewArray::from_iter(texts)),
                Key::Utf8 => Arc::new(StringArray::from_iter(texts)),
                _ => Arc::new(LargeStringArray::from_iter(texts)),
            }
        }
        Key::Boolean => Arc::new(
            codes
                .map(|c| value(c).map(|v| v == 1))
                .collect::<BooleanArray>(),
        ),
        Key::Int8 => Arc::new(
            codes
                .map(|c| value(c).map(|v| v as i8))
                .collect::<Int8Array>(),
        ),
        Key::UInt8 => Arc::new(codes.map(value).collect::<UInt8Array>()),
    })
}

/// A partial [`AggregateExec`] whose group keys may be tiny, run through a direct table while
/// they are (see the module's documentation).
#[derive(Debug)]
pub struct TinyKeyAggregateExec {
    /// The partial aggregation replaced: its parameters, schema and properties, and what runs
    /// when a key turns out not to be tiny.
    aggregate: Arc<dyn ExecutionPlan>,
    keys: Vec<Key>,
    metrics: ExecutionPlanMetricsSet,
    /// DataFusion's aggregations that took over partitions, for their metrics.
    delegates: Arc<Mutex<Vec<Arc<dyn ExecutionPlan>>>>,
}

impl TinyKeyAggregateExec {
    fn new(aggregate: Arc<dyn ExecutionPlan>, keys: Vec<Key>) -> Result<Self> {
        if aggregate.downcast_ref::<AggregateExec>().is_none() {
            return internal_err!("TinyKeyAggregateExec wraps an AggregateExec");
        }
        Ok(Self {
            aggregate,
            keys,
            metrics: ExecutionPlanMetricsSet::new(),
            delegates: Arc::default(),
        })
    }

    fn aggregate(&self) -> &AggregateExec {
        self.aggregate
            .downcast_ref::<AggregateExec>()
            .expect("checked in new")
    }
}

impl DisplayAs for TinyKeyAggregateExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let agg = self.aggregate();
        let keys: Vec<&str> = agg
            .group_expr()
            .expr()
            .iter()
            .map(|(_, n)| n.as_str())
            .collect();
        let aggs: Vec<&str> = agg.aggr_expr().iter().map(|a| a.name()).collect();
        write!(
            f,
            "TinyKeyAggregateExec: mode=Partial, gby=[{}], aggr=[{}]",
            keys.join(", "),
            aggs.join(", ")
        )
    }
}

impl ExecutionPlan for TinyKeyAggregateExec {
    fn name(&self) -> &str {
        "TinyKeyAggregateExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.aggregate.properties()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.aggregate.apply_expressions(f)
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.aggregate().input()]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let aggregate = replace_children_if_necessary(Arc::clone(&self.aggregate), children)?;
        Ok(Arc::new(Self::new(aggregate, self.keys.clone())?))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        let mut metrics = self.metrics.clone_inner();
        let delegates = self.delegates.lock().map(|d| d.clone()).unwrap_or_default();
        for delegate in delegates {
            for metric in delegate.metrics().iter().flat_map(|m| m.iter()) {
                metrics.push(Arc::clone(metric));
            }
        }
        Some(metrics)
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        self.aggregate.child_stats_requests(partition)
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        self.aggregate.statistics_from_inputs(input_stats, args)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let agg = self.aggregate();
        let input = agg.input().execute(partition, Arc::clone(&context))?;
        let schema = self.schema();
        let reservation = MemoryConsumer::new(format!("TinyKeyAggregateExec[{partition}]"))
            .register(context.memory_pool());
        let groups = Groups::new(agg, &self.keys, reservation)?;
        let run = Run {
            phase: Phase::Tiny(input),
            groups,
            pending: VecDeque::new(),
            aggregate: Arc::clone(&self.aggregate),
            delegates: Arc::clone(&self.delegates),
            batch_size: context.session_config().batch_size(),
            context,
            metrics: BaselineMetrics::new(&self.metrics, partition),
        };
        let stream = futures::stream::unfold(run, |mut run| async move {
            let next = run.next().await;
            if let Some(Ok(batch)) = &next {
                run.metrics.record_output(batch.num_rows());
            } else {
                run.metrics.done();
            }
            next.map(|item| (item, run))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

/// One partition's groups: the direct table, each group's combined key code, and the
/// accumulators.
struct Groups {
    keys: Vec<Key>,
    key_exprs: Vec<Arc<dyn PhysicalExpr>>,
    args: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    /// Slot (combined code) to group index, `u32::MAX` when empty.
    slots: Vec<u32>,
    /// Each group's combined code.
    codes: Vec<u32>,
    rows: Vec<u32>,
    indices: Vec<usize>,
    schema: SchemaRef,
    input: SchemaRef,
    reservation: MemoryReservation,
}

enum Absorbed {
    Yes,
    /// Absorbed, and the groups no longer fit in memory: emit them.
    Full,
    /// Not absorbed: a key is not tiny.
    NotTiny,
}

impl Groups {
    fn new(agg: &AggregateExec, keys: &[Key], reservation: MemoryReservation) -> Result<Self> {
        let aggregates = agg.aggr_expr().to_vec();
        let mut groups = Self {
            keys: keys.to_vec(),
            key_exprs: agg
                .group_expr()
                .expr()
                .iter()
                .map(|(e, _)| Arc::clone(e))
                .collect(),
            args: aggregates.iter().map(|a| a.expressions()).collect(),
            filters: agg.filter_expr().to_vec(),
            accumulators: Vec::new(),
            aggregates,
            slots: Vec::new(),
            codes: Vec::new(),
            rows: Vec::new(),
            indices: Vec::new(),
            schema: agg.schema(),
            input: agg.input_schema(),
            reservation,
        };
        groups.reset()?;
        Ok(groups)
    }

    fn reset(&mut self) -> Result<()> {
        self.accumulators = self
            .aggregates
            .iter()
            .zip(&self.filters)
            .map(|(a, filter)| {
                match filter {
                    None => lanes(a, &self.input),
                    Some(_) => Ok(None),
                }
                .transpose()
                .unwrap_or_else(|| a.create_groups_accumulator())
            })
            .collect::<Result<_>>()?;
        self.codes.clear();
        self.slots.clear();
        self.slots.resize(
            self.keys.iter().map(|k| k.domain()).product::<usize>(),
            u32::MAX,
        );
        Ok(())
    }

    fn absorb(&mut self, batch: &RecordBatch) -> Result<Absorbed> {
        let n = batch.num_rows();
        self.rows.clear();
        self.rows.resize(n, 0);
        let mut stride = 1u32;
        for (key, expr) in self.keys.iter().zip(&self.key_exprs) {
            let array = expr.evaluate(batch)?.into_array(n)?;
            if !add_codes(*key, &array, stride, &mut self.rows) {
                return Ok(Absorbed::NotTiny);
            }
            stride *= key.domain() as u32;
        }
        self.indices.clear();
        self.indices.reserve(n);
        for &code in &self.rows {
            let slot = &mut self.slots[code as usize];
            if *slot == u32::MAX {
                *slot = self.codes.len() as u32;
                self.codes.push(code);
            }
            self.indices.push(*slot as usize);
        }
        let groups = self.codes.len();
        for ((acc, args), filter) in self
            .accumulators
            .iter_mut()
            .zip(&self.args)
            .zip(&self.filters)
        {
            let values = args
                .iter()
                .map(|e| e.evaluate(batch)?.into_array(n))
                .collect::<Result<Vec<_>>>()?;
            let filter = match filter {
                Some(f) => Some(f.evaluate(batch)?.into_array(n)?),
                None => None,
            };
            let filter = filter.as_ref().map(|f| f.as_boolean());
            acc.update_batch(&values, &self.indices, filter, groups)?;
        }
        let size = self.accumulators.iter().map(|a| a.size()).sum::<usize>()
            + self.slots.len() * 4
            + self.codes.capacity() * 4;
        Ok(match self.reservation.try_resize(size) {
            Ok(()) => Absorbed::Yes,
            Err(_) => Absorbed::Full,
        })
    }

    /// The groups so far as partial-aggregate batches of at most `batch_size` rows, and a fresh
    /// start.
    fn emit(&mut self, batch_size: usize) -> Result<VecDeque<RecordBatch>> {
        let mut out = VecDeque::new();
        if self.codes.is_empty() {
            self.reservation.free();
            return Ok(out);
        }
        let mut columns = Vec::with_capacity(self.schema.fields().len());
        let mut stride = 1u32;
        for key in &self.keys {
            let domain = key.domain() as u32;
            columns.push(decode(
                *key,
                self.codes.iter().map(|c| (c / stride) % domain),
            )?);
            stride *= domain;
        }
        for acc in &mut self.accumulators {
            columns.extend(acc.state(EmitTo::All)?);
        }
        // The accumulators' state types are the partial schema's; a key array built here may
        // differ from the schema only in nullability, which RecordBatch checks.
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        let rows = batch.num_rows();
        let mut offset = 0;
        while offset < rows {
            let len = batch_size.max(1).min(rows - offset);
            out.push_back(batch.slice(offset, len));
            offset += len;
        }
        self.reset()?;
        self.reservation.free();
        Ok(out)
    }
}

/// Interleaved partial sums per group: row `i` of a batch adds to lane `i % LANES` of its group,
/// so consecutive rows of the same group (few groups: most rows) do not wait for each other's
/// addition.
const LANES: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    Sum,
    Avg,
    Count,
}

/// `sum` and `avg` of a `Decimal128` and `count` of anything, for few groups: [`LANES`] running
/// totals per group, added up when the state is taken. The state is DataFusion's (see its
/// `sum`, `avg` and `count`): a sum NULL for a group without values, an average's count and sum,
/// a count. Decimal sums wrap on overflow as DataFusion's do.
#[derive(Debug)]
struct LaneAccumulator {
    kind: Lane,
    aggregate: Arc<AggregateFunctionExpr>,
    state: Vec<DataType>,
    sums: Vec<i128>,
    counts: Vec<u64>,
}

/// A [`LaneAccumulator`] for `a`, when it is one of the aggregates it computes (and not turned
/// off with `QUARRY_LANE_SUMS=false`, kept for measuring).
fn lanes(
    a: &Arc<AggregateFunctionExpr>,
    input: &Schema,
) -> Result<Option<Box<dyn GroupsAccumulator>>> {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*ENABLED.get_or_init(|| std::env::var("QUARRY_LANE_SUMS").as_deref() != Ok("false")) {
        return Ok(None);
    }
    let args = a.expressions();
    let [arg] = args.as_slice() else {
        return Ok(None);
    };
    let state: Vec<DataType> = a
        .state_fields()?
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    let kind = match (a.fun().name(), arg.data_type(input)?, state.as_slice()) {
        ("sum", DataType::Decimal128(_, s), [DataType::Decimal128(_, t)]) if s == *t => Lane::Sum,
        ("avg", DataType::Decimal128(_, s), [DataType::UInt64, DataType::Decimal128(_, t)])
            if s == *t =>
        {
            Lane::Avg
        }
        ("count", _, [DataType::Int64]) => Lane::Count,
        _ => return Ok(None),
    };
    Ok(Some(Box::new(LaneAccumulator {
        kind,
        aggregate: Arc::clone(a),
        state,
        sums: Vec::new(),
        counts: Vec::new(),
    })))
}

impl LaneAccumulator {
    fn resize(&mut self, groups: usize) {
        self.counts.resize(groups * LANES, 0);
        if self.kind != Lane::Count {
            self.sums.resize(groups * LANES, 0);
        }
    }

    /// Adds `sum` (if any) and `count` to row `i`'s lane of group `g`.
    #[inline]
    fn add(&mut self, g: usize, i: usize, sum: Option<i128>, count: u64) {
        let slot = g * LANES + i % LANES;
        self.counts[slot] += count;
        if let Some(v) = sum {
            self.sums[slot] = self.sums[slot].wrapping_add(v);
        }
    }
}

impl GroupsAccumulator for LaneAccumulator {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize(total_num_groups);
        let values = &values[0];
        let nulls = values.logical_nulls();
        if nulls.is_none() && opt_filter.is_none() {
            if self.kind == Lane::Count {
                for (i, g) in group_indices.iter().enumerate() {
                    self.counts[g * LANES + i % LANES] += 1;
                }
            } else {
                let d = values.as_primitive::<Decimal128Type>().values();
                for (i, (g, v)) in group_indices.iter().zip(d.iter()).enumerate() {
                    let slot = g * LANES + i % LANES;
                    self.sums[slot] = self.sums[slot].wrapping_add(*v);
                    self.counts[slot] += 1;
                }
            }
            return Ok(());
        }
        let d = (self.kind != Lane::Count).then(|| values.as_primitive::<Decimal128Type>());
        for (i, g) in group_indices.iter().enumerate() {
            let keep = nulls.as_ref().is_none_or(|n| n.is_valid(i))
                && opt_filter.is_none_or(|f| f.is_valid(i) && f.value(i));
            if keep {
                self.add(*g, i, d.map(|d| d.value(i)), 1);
            }
        }
        Ok(())
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize(total_num_groups);
        match self.kind {
            Lane::Count => {
                let counts = values[0].as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                for (i, g) in group_indices.iter().enumerate() {
                    if counts.is_valid(i) {
                        self.add(*g, i, None, counts.value(i) as u64);
                    }
                }
            }
            Lane::Sum => {
                let sums = values[0].as_primitive::<Decimal128Type>();
                for (i, g) in group_indices.iter().enumerate() {
                    if sums.is_valid(i) {
                        self.add(*g, i, Some(sums.value(i)), 1);
                    }
                }
            }
            Lane::Avg => {
                let counts = values[0].as_primitive::<datafusion::arrow::datatypes::UInt64Type>();
                let sums = values[1].as_primitive::<Decimal128Type>();
                for (i, g) in group_indices.iter().enumerate() {
                    if counts.is_valid(i) && sums.is_valid(i) {
                        self.add(*g, i, Some(sums.value(i)), counts.value(i));
                    }
                }
            }
        }
        Ok(())
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let groups = self.counts.len() / LANES;
        let n = match emit_to {
            EmitTo::All => groups,
            EmitTo::First(n) => n.min(groups),
        };
        let counts: Vec<u64> = self
            .counts
            .drain(..n * LANES)
            .collect::<Vec<_>>()
            .chunks_exact(LANES)
            .map(|c| c.iter().sum())
            .collect();
        let seen = NullBuffer::from(counts.iter().map(|c| *c > 0).collect::<Vec<_>>());
        if self.kind == Lane::Count {
            let counts = Int64Array::from_iter_values(counts.iter().map(|c| *c as i64));
            return Ok(vec![Arc::new(counts)]);
        }
        let sums: Vec<i128> = self
            .sums
            .drain(..n * LANES)
            .collect::<Vec<_>>()
            .chunks_exact(LANES)
            .map(|c| c.iter().fold(0i128, |a, b| a.wrapping_add(*b)))
            .collect();
        let sum_type = self.state[self.state.len() - 1].clone();
        let sums = Decimal128Array::new(sums.into(), Some(seen.clone())).with_data_type(sum_type);
        Ok(match self.kind {
            Lane::Avg => vec![
                Arc::new(UInt64Array::new(counts.into(), Some(seen))) as ArrayRef,
                Arc::new(sums),
            ],
            _ => vec![Arc::new(sums) as ArrayRef],
        })
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        // The final value (an average's division, its result type) is DataFusion's: its own
        // accumulator merges this state and evaluates it.
        let state = self.state(emit_to)?;
        let groups = state[0].len();
        let mut own = self.aggregate.create_groups_accumulator()?;
        let indices: Vec<usize> = (0..groups).collect();
        own.merge_batch(&state, &indices, groups)?;
        own.evaluate(EmitTo::All)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        self.aggregate
            .create_groups_accumulator()?
            .convert_to_state(values, opt_filter)
    }

    fn size(&self) -> usize {
        self.sums.capacity() * 16 + self.counts.capacity() * 8
    }
}

enum Phase {
    Tiny(SendableRecordBatchStream),
    Delegated(SendableRecordBatchStream),
    Done,
}

struct Run {
    phase: Phase,
    groups: Groups,
    pending: VecDeque<RecordBatch>,
    aggregate: Arc<dyn ExecutionPlan>,
    delegates: Arc<Mutex<Vec<Arc<dyn ExecutionPlan>>>>,
    batch_size: usize,
    context: Arc<TaskContext>,
    metrics: BaselineMetrics,
}

impl Run {
    async fn next(&mut self) -> Option<Result<RecordBatch>> {
        let result = self.step().await;
        if matches!(result, Some(Err(_))) {
            self.phase = Phase::Done;
            self.pending.clear();
        }
        result
    }

    async fn step(&mut self) -> Option<Result<RecordBatch>> {
        loop {
            if let Some(batch) = self.pending.pop_front() {
                return Some(Ok(batch));
            }
            let input = match &mut self.phase {
                Phase::Done => return None,
                Phase::Delegated(stream) => return stream.next().await,
                Phase::Tiny(input) => input,
            };
            let batch = match input.next().await {
                None => {
                    self.phase = Phase::Done;
                    match self.groups.emit(self.batch_size) {
                        Ok(batches) => self.pending = batches,
                        Err(e) => return Some(Err(e)),
                    }
                    continue;
                }
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(batch)) => batch,
            };
            let timer = self.metrics.elapsed_compute().timer();
            let absorbed = self.groups.absorb(&batch);
            timer.done();
            match absorbed {
                Err(e) => return Some(Err(e)),
                Ok(Absorbed::Yes) => {}
                Ok(Absorbed::Full) => match self.groups.emit(self.batch_size) {
                    Ok(batches) => self.pending = batches,
                    Err(e) => return Some(Err(e)),
                },
                Ok(Absorbed::NotTiny) => {
                    let Phase::Tiny(input) = std::mem::replace(&mut self.phase, Phase::Done) else {
                        unreachable!("matched above")
                    };
                    let delegated = self.groups.emit(self.batch_size).and_then(|batches| {
                        self.pending = batches;
                        // The direct table is not used again.
                        self.groups.slots = Vec::new();
                        self.delegate(batch, input)
                    });
                    match delegated {
                        Ok(stream) => self.phase = Phase::Delegated(stream),
                        Err(e) => return Some(Err(e)),
                    }
                }
            }
        }
    }

    /// DataFusion's own partial aggregation of `first` and the rest of `input`.
    fn delegate(
        &self,
        first: RecordBatch,
        input: SendableRecordBatchStream,
    ) -> Result<SendableRecordBatchStream> {
        let Some(agg) = self.aggregate.downcast_ref::<AggregateExec>() else {
            return internal_err!("TinyKeyAggregateExec wraps an AggregateExec");
        };
        let schema = input.schema();
        let rest = futures::stream::once(async move { Ok(first) }).chain(input);
        let source = Arc::new(OnceStream {
            schema: Arc::clone(&schema),
            stream: Mutex::new(Some(Box::pin(RecordBatchStreamAdapter::new(
                Arc::clone(&schema),
                rest,
            )))),
        });
        let scan = StreamingTableExec::try_new(schema, vec![source], None, [], false, None)?;
        let own = AggregateExec::try_new(
            AggregateMode::Partial,
            agg.group_expr().clone(),
            agg.aggr_expr().to_vec(),
            agg.filter_expr().to_vec(),
            Arc::new(scan),
            agg.input_schema(),
        )?;
        let own: Arc<dyn ExecutionPlan> = Arc::new(own);
        let stream = own.execute(0, Arc::clone(&self.context))?;
        if let Ok(mut delegates) = self.delegates.lock() {
            delegates.push(own);
        }
        Ok(stream)
    }
}

/// The rest of a partition's input, as the one partition of a [`StreamingTableExec`].
struct OnceStream {
    schema: SchemaRef,
    stream: Mutex<Option<SendableRecordBatchStream>>,
}

impl fmt::Debug for OnceStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnceStream")
    }
}

impl PartitionStream for OnceStream {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let taken = self.stream.lock().ok().and_then(|mut s| s.take());
        taken.unwrap_or_else(|| {
            Box::pin(RecordBatchStreamAdapter::new(
                Arc::clone(&self.schema),
                futures::stream::once(async {
                    Err(DataFusionError::Internal(
                        "TinyKeyAggregateExec's input was already read".into(),
                    ))
                }),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::execution::memory_pool::GreedyMemoryPool;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::physical_plan::{collect, displayable};
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// 4,000 rows in batches of 100 over two partitions: one-byte, empty and NULL strings in
    /// three string types, booleans and 8-bit integers, with NULLs in the aggregated values.
    const TABLE: &str = "SELECT \
        arrow_cast(CASE WHEN value % 7 = 0 THEN NULL WHEN value % 5 = 0 THEN '' \
                   ELSE chr(65 + CAST(value % 3 AS INT)) END, 'Utf8View') AS flag, \
        arrow_cast(chr(120 + CAST(value % 2 AS INT)), 'Utf8') AS status, \
        arrow_cast(CASE WHEN value % 11 = 0 THEN NULL ELSE chr(48 + CAST(value % 4 AS INT)) END, \
                   'LargeUtf8') AS code, \
        CASE WHEN value % 13 = 0 THEN NULL ELSE value % 2 = 0 END AS ok, \
        arrow_cast(value % 256 - 128, 'Int8') AS tiny, \
        arrow_cast(CASE WHEN value % 17 = 0 THEN NULL ELSE value % 200 END, 'UInt8') AS small, \
        CASE WHEN value % 9 = 0 THEN NULL ELSE CAST(value AS DECIMAL(15,2)) / 100 END AS price, \
        CAST(value AS DOUBLE) AS x \
        FROM generate_series(1, 4000)";

    async fn context(rules: bool, memory: Option<usize>) -> SessionContext {
        let config = SessionConfig::new()
            .with_target_partitions(2)
            .with_batch_size(100);
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features();
        if let Some(limit) = memory {
            let runtime = RuntimeEnvBuilder::new()
                .with_memory_pool(Arc::new(GreedyMemoryPool::new(limit)))
                .build_arc()
                .unwrap();
            state = state.with_runtime_env(runtime);
        }
        if rules {
            state = crate::rules::with_physical_rules(state);
        }
        let ctx = SessionContext::new_with_state(state.build());
        let batches = ctx.sql(TABLE).await.unwrap().collect().await.unwrap();
        let mem = datafusion::datasource::MemTable::try_new(
            batches[0].schema(),
            vec![
                batches[..batches.len() / 2].to_vec(),
                batches[batches.len() / 2..].to_vec(),
            ],
        )
        .unwrap();
        ctx.register_table("t", Arc::new(mem)).unwrap();
        ctx
    }

    /// The answer (sorted text) and the physical plan.
    async fn run(ctx: &SessionContext, sql: &str) -> (String, String) {
        let (answer, plan, _) = run_counted(ctx, sql).await;
        (answer, plan)
    }

    /// [`run`], and the rows the tiny-key aggregation emitted.
    async fn run_counted(ctx: &SessionContext, sql: &str) -> (String, String, usize) {
        let df = ctx.sql(sql).await.unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        let text = displayable(plan.as_ref()).indent(false).to_string();
        let batches = collect(Arc::clone(&plan), ctx.task_ctx()).await.unwrap();
        let mut emitted = 0;
        let mut nodes = vec![plan];
        while let Some(node) = nodes.pop() {
            if node.name() == "TinyKeyAggregateExec" {
                emitted += node.metrics().and_then(|m| m.output_rows()).unwrap_or(0);
            }
            nodes.extend(node.children().into_iter().cloned());
        }
        let answer = pretty_format_batches(&batches).unwrap().to_string();
        let mut lines: Vec<&str> = answer.lines().collect();
        lines.sort_unstable();
        (lines.join("\n"), text, emitted)
    }

    const QUERIES: [&str; 5] = [
        "SELECT flag, status, sum(price), avg(price), count(*), count(price), min(x), max(x) \
         FROM t GROUP BY flag, status ORDER BY flag, status",
        "SELECT code, ok, tiny > 0 AS positive, sum(x) FILTER (WHERE price > 10), count(*) \
         FROM t GROUP BY code, ok, tiny > 0 ORDER BY 1, 2, 3",
        "SELECT small, ok, sum(price) FROM t GROUP BY small, ok ORDER BY 1, 2",
        "SELECT tiny, count(*), sum(price) FROM t GROUP BY tiny ORDER BY 1",
        "SELECT NOT ok AS ko, lower(flag) AS f, count(*) FROM t GROUP BY NOT ok, lower(flag)",
    ];

    #[tokio::test]
    async fn tiny_keys_give_datafusions_answers_through_a_direct_table() {
        let plain = context(false, None).await;
        let ctx = context(true, None).await;
        for sql in QUERIES {
            let (expected, _) = run(&plain, sql).await;
            let (actual, plan, emitted) = run_counted(&ctx, sql).await;
            assert_eq!(actual, expected, "{sql}\n{plan}");
            assert!(plan.contains("TinyKeyAggregateExec"), "{sql}\n{plan}");
            // Each of the two partitions emits each of its groups once.
            let groups = actual.lines().count() - 4; // borders and header
            assert!(
                emitted >= groups && emitted <= 2 * groups,
                "{sql}: {emitted}"
            );
            assert!(
                !plan
                    .lines()
                    .any(|l| l.trim_start().starts_with("AggregateExec: mode=Partial")),
                "{sql}\n{plan}"
            );
        }
        // Some groups hold NULL keys and NULL sums; the empty string is a key of its own.
        let (answer, _) = run(&ctx, QUERIES[0]).await;
        assert!(answer.contains("|      | x      |"), "{answer}");
        assert!(answer.lines().count() > 10, "{answer}");
    }

    #[tokio::test]
    async fn longer_keys_hand_the_partition_to_datafusions_aggregation() {
        let plain = context(false, None).await;
        let ctx = context(true, None).await;
        // One-byte strings for the first rows, then two-byte ones: groups emitted from the
        // direct table meet the same groups from DataFusion's in the final aggregation.
        let sql = "SELECT CASE WHEN x > 1500 THEN status || flag ELSE status END AS k, \
                   count(*), sum(price) FROM t GROUP BY 1 ORDER BY 1";
        let (expected, _) = run(&plain, sql).await;
        let (actual, plan, emitted) = run_counted(&ctx, sql).await;
        assert_eq!(actual, expected, "{plan}");
        assert!(plan.contains("TinyKeyAggregateExec"), "{plan}");
        // DataFusion's rows are counted in the node's metrics too.
        let groups = actual.lines().count() - 4;
        assert!(emitted > groups, "{emitted}");
        assert!(actual.contains("| x "), "{actual}");
        assert!(actual.contains("| xA "), "{actual}");
        // Keys of other types keep DataFusion's operator.
        let (_, plan) = run(&ctx, "SELECT x, count(*) FROM t GROUP BY x").await;
        assert!(!plan.contains("TinyKeyAggregateExec"), "{plan}");
    }

    #[tokio::test]
    async fn statistics_showing_a_longer_string_keep_datafusions_operator() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(true, None).await;
        ctx.sql(&format!(
            "COPY (SELECT flag, 'Supplier#' || status AS name, price FROM t) TO '{}/' \
             STORED AS PARQUET",
            dir.path().display()
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
        ctx.register_parquet("p", dir.path().to_str().unwrap(), Default::default())
            .await
            .unwrap();
        // The footers' min / max of `name` are 10 bytes long; `flag`'s are one byte.
        let (_, plan) = run(&ctx, "SELECT name, sum(price) FROM p GROUP BY name").await;
        assert!(!plan.contains("TinyKeyAggregateExec"), "{plan}");
        let (_, plan) = run(&ctx, "SELECT flag, sum(price) FROM p GROUP BY flag").await;
        assert!(plan.contains("TinyKeyAggregateExec"), "{plan}");
    }

    #[test]
    fn lane_accumulators_keep_datafusions_state_and_answers() {
        use datafusion::arrow::datatypes::Field;
        use datafusion::functions_aggregate::{
            average::avg_udaf, count::count_udaf, sum::sum_udaf,
        };
        use datafusion::physical_expr::aggregate::AggregateExprBuilder;
        use datafusion::physical_expr::expressions::col;

        let schema = Arc::new(Schema::new(vec![Field::new(
            "d",
            DataType::Decimal128(15, 2),
            true,
        )]));
        let values: ArrayRef = Arc::new(
            (0..1000)
                .map(|i: i128| (i % 9 != 0).then_some(i * 7919 - 3_000_000))
                .collect::<Decimal128Array>()
                .with_precision_and_scale(15, 2)
                .unwrap(),
        );
        // Group 5 gets only NULLs; group 6 no rows at all.
        let groups: Vec<usize> = (0..1000)
            .map(|i| if i % 9 == 0 && i % 2 == 0 { 5 } else { i % 5 })
            .collect();
        let filter: BooleanArray = (0..1000).map(|i| Some(i % 3 != 1)).collect();
        for udaf in [sum_udaf(), avg_udaf(), count_udaf()] {
            let name = udaf.name().to_string();
            let a = Arc::new(
                AggregateExprBuilder::new(udaf, vec![col("d", &schema).unwrap()])
                    .schema(Arc::clone(&schema))
                    .alias(&name)
                    .build()
                    .unwrap(),
            );
            let mut lane = lanes(&a, &schema).unwrap().expect(&name);
            let mut own = a.create_groups_accumulator().unwrap();
            for f in [None, Some(&filter)] {
                lane.update_batch(&[Arc::clone(&values)], &groups, f, 7)
                    .unwrap();
                own.update_batch(&[Arc::clone(&values)], &groups, f, 7)
                    .unwrap();
            }
            let (first, rest) = (
                lane.state(EmitTo::First(2)).unwrap(),
                lane.state(EmitTo::All).unwrap(),
            );
            assert_eq!(first, own.state(EmitTo::First(2)).unwrap(), "{name}");
            assert_eq!(rest, own.state(EmitTo::All).unwrap(), "{name}");
            // Merging the state gives DataFusion's state; evaluating, DataFusion's answer.
            let state = [first, rest].concat();
            let mut lane = lanes(&a, &schema).unwrap().unwrap();
            let mut own = a.create_groups_accumulator().unwrap();
            let (mut merged, mut answers) = (Vec::new(), Vec::new());
            for acc in [&mut lane, &mut own] {
                for part in 0..2 {
                    let n = state.len() / 2;
                    let batch = &state[part * n..(part + 1) * n];
                    let offset = if part == 0 { 0 } else { 2 };
                    let indices: Vec<usize> = (0..batch[0].len()).map(|i| i + offset).collect();
                    // As an aggregation calls it: every group below the total has had rows.
                    acc.merge_batch(batch, &indices, offset + batch[0].len())
                        .unwrap();
                }
                merged.push(acc.state(EmitTo::All).unwrap());
            }
            assert_eq!(merged[0], merged[1], "{name}");
            for acc in [&mut lane, &mut own] {
                acc.update_batch(&[Arc::clone(&values)], &groups, None, 7)
                    .unwrap();
                answers.push(acc.evaluate(EmitTo::All).unwrap());
            }
            assert_eq!(answers[0..1], answers[1..2], "{name}");
            let merged = answers;
            assert_eq!(merged[0].len(), 7, "{name}");
        }
    }

    #[tokio::test]
    async fn a_small_memory_pool_makes_it_emit_early_not_fail() {
        let plain = context(false, None).await;
        // Smaller than the direct table of two string keys (258 x 258 slots of 4 bytes): every
        // batch's groups are emitted as it is absorbed.
        // No ORDER BY: a sort reserves more than that.
        let ctx = context(true, Some(200_000)).await;
        let sql = "SELECT flag, status, sum(price), avg(price), count(*) FROM t GROUP BY 1, 2";
        let (expected, _) = run(&plain, sql).await;
        let (actual, plan, emitted) = run_counted(&ctx, sql).await;
        assert_eq!(actual, expected, "{plan}");
        assert!(plan.contains("TinyKeyAggregateExec"), "{plan}");
        // 40 batches, each emitting its own groups: many more rows than the 2 x 18 groups.
        assert!(emitted > 200, "{emitted}");
    }
}
