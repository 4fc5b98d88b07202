//! The embedded release promotion engine (reference promotion.md). So far: the
//! flavors and the kinds each one targets ([`flavor`]), and the snowman model —
//! `existing_tasks` from previous graphs, the replace pass of the optimizer and
//! `previous_graph_ids` from Ship-it phases ([`snowman`]). Graph generation, the
//! executor and the tasks against a lease's endpoints come next.
pub mod exec;
pub mod flavor;
pub mod graph;
pub mod input;
pub mod run;
pub mod s3;
pub mod snowman;
pub mod tasks;
