//! A cluster of three `sluice serve` nodes on loopback, each broker and controller voter:
//! the quorum forms whatever the start order, a late node catches up, and the loss of the
//! active controller (SIGKILL) elects another, fences the dead broker, and takes it back
//! when it returns.

mod common;

use common::cluster::{Cluster, CLUSTER_CONFIG};

#[test]
fn the_quorum_forms_fences_a_dead_broker_and_survives_its_controller() {
    let mut cluster = Cluster::new(3, CLUSTER_CONFIG);
    // A majority forms the quorum; the third node joins later and catches up.
    cluster.start(3);
    cluster.start(1);
    cluster.wait_for_brokers(&[1, 3]);
    cluster.start(2);
    let controller = cluster.wait_for_brokers(&[1, 2, 3]);

    // The active controller dies: the others elect one of themselves and fence it.
    cluster.kill(controller as usize);
    let remaining: Vec<i32> = [1, 2, 3].into_iter().filter(|id| *id != controller).collect();
    let successor = cluster.wait_for_brokers(&remaining);
    assert_ne!(successor, controller);

    // It comes back on its data: it registers again and is listed once more.
    cluster.start(controller as usize);
    cluster.wait_for_brokers(&[1, 2, 3]);

    // Two of three down, then one back: a majority again, and the quorum with it.
    let (first, second) = (remaining[0] as usize, remaining[1] as usize);
    cluster.kill(first);
    cluster.kill(second);
    cluster.start(first);
    let mut brokers = vec![controller, first as i32];
    brokers.sort();
    cluster.wait_for_brokers(&brokers);
}
