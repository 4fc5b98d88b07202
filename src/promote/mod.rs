//! The embedded release promotion engine (reference promotion.md): the action
//! input ([`input`]), flavors and target kinds ([`flavor`]), graph generation
//! ([`graph`]), the snowman model ([`snowman`]), the executor ([`exec`]), the
//! tasks against a lease's endpoints ([`tasks`], S3 through [`s3`]) and one
//! promotion end to end ([`run`]).
pub mod exec;
pub mod flavor;
pub mod graph;
pub mod input;
pub mod run;
pub mod s3;
pub mod snowman;
pub mod tasks;
