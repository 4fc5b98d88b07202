//! Promotion graphs and their tasks, written once for both databases over
//! [`SqlTx`](super::sql::SqlTx).
use super::row::{self, GraphDbRow, TaskDbRow, GRAPH_COLUMNS, TASK_COLUMNS};
use super::sql::{SqlTx, Val};
use super::{GraphRow, StoreError, TaskRow};

/// Task rows per INSERT statement (8 parameters each).
const TASKS_PER_INSERT: usize = 200;

pub async fn create(tx: &mut dyn SqlTx, graph: &GraphRow, tasks: &[TaskRow]) -> Result<(), StoreError> {
    tx.exec(
        "INSERT INTO promotion_graphs (graph_id, lease_id, flavor, created_at, record) VALUES ($1, $2, $3, $4, $5)",
        vec![
            graph.graph_id.clone().into(),
            graph.lease_id.clone().into(),
            graph.flavor.clone().into(),
            Val::Int(row::ms(graph.created_at)),
            row::json(&graph.record)?.into(),
        ],
    )
    .await?;
    for chunk in tasks.chunks(TASKS_PER_INSERT) {
        let mut sql = String::from(
            "INSERT INTO promotion_tasks (graph_id, label, task_id, state, attempts, detail, started_at, finished_at) VALUES ",
        );
        let mut args = Vec::with_capacity(chunk.len() * 8);
        for (i, t) in chunk.iter().enumerate() {
            let n = i * 8;
            let marks: Vec<String> = (1..=8).map(|k| format!("${}", n + k)).collect();
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("({})", marks.join(", ")));
            args.extend([
                graph.graph_id.clone().into(),
                t.label.clone().into(),
                t.task_id.clone().into(),
                t.state.clone().into(),
                Val::Int(t.attempts),
                t.detail.clone().into(),
                t.started_at.map(row::ms).into(),
                t.finished_at.map(row::ms).into(),
            ]);
        }
        tx.exec(&sql, args).await?;
    }
    Ok(())
}

pub async fn update_task(tx: &mut dyn SqlTx, graph_id: &str, t: &TaskRow) -> Result<(), StoreError> {
    tx.exec(
        "UPDATE promotion_tasks SET task_id = $1, state = $2, attempts = $3, detail = $4, started_at = $5, \
         finished_at = $6 WHERE graph_id = $7 AND label = $8",
        vec![
            t.task_id.clone().into(),
            t.state.clone().into(),
            Val::Int(t.attempts),
            t.detail.clone().into(),
            t.started_at.map(row::ms).into(),
            t.finished_at.map(row::ms).into(),
            graph_id.into(),
            t.label.clone().into(),
        ],
    )
    .await?;
    Ok(())
}

pub async fn get(tx: &mut dyn SqlTx, graph_id: &str) -> Result<Option<(GraphRow, Vec<TaskRow>)>, StoreError> {
    let graphs: Vec<GraphDbRow> = tx
        .graphs(
            &format!("SELECT {GRAPH_COLUMNS} FROM promotion_graphs WHERE graph_id = $1"),
            vec![graph_id.into()],
        )
        .await?;
    let Some(g) = graphs.into_iter().next() else {
        return Ok(None);
    };
    let tasks: Vec<TaskDbRow> = tx
        .tasks(
            &format!("SELECT {TASK_COLUMNS} FROM promotion_tasks WHERE graph_id = $1 ORDER BY label"),
            vec![graph_id.into()],
        )
        .await?;
    let tasks = tasks
        .into_iter()
        .map(TaskRow::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some((g.try_into()?, tasks)))
}

pub async fn list(tx: &mut dyn SqlTx, lease_id: &str) -> Result<Vec<GraphRow>, StoreError> {
    let rows = tx
        .graphs(
            &format!("SELECT {GRAPH_COLUMNS} FROM promotion_graphs WHERE lease_id = $1 ORDER BY created_at, graph_id"),
            vec![lease_id.into()],
        )
        .await?;
    rows.into_iter().map(GraphRow::try_from).collect()
}
