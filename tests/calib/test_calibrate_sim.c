/* End to end on the simulator: the demo rig (examples/rigs/demo-studio.yaml) is recorded and
 * calibrated (calsim.h); every device's depth-camera pose in the rig frame must match the
 * simulator's ground truth (rotation < 0.03 deg, translation < 1 mm). This ties together the
 * simulator's rendering and calibration files, the recorder, the detector and the solver.
 * test_calibrate_oblique does the same with a rig where only the solver's refinement is this close. */
#include "calsim.h"

static void demo_rig_calibrates_to_truth(void)
{
    calibrates_to_truth("examples/rigs/demo-studio.yaml", 0.03, 1.0);
}

int main(void)
{
    KS_RUN(demo_rig_calibrates_to_truth);
    return KS_TEST_END();
}
