# One .pxd per stage of docs/forwarding-model.md; forward.pyx (the driver) runs them in the order of
# forward.stage_names() == fastvpc.reference.ReferenceForwarder.STAGES.
