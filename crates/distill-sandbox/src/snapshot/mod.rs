pub struct Diff;
pub struct Snapshotter;
pub enum SnapshotterKind {}
pub struct View;
