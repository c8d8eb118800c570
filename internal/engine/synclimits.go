package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/keyless-cd/keyless/internal/lifecycle"
)

// planSteps is how many waves a sync of p may run one after the other,
// each waiting up to ApplyOptions.StepTimeout: its PreSync, Sync and
// PostSync waves and, should one fail, its SyncFail waves.
func planSteps(p *lifecycle.Plan) int { return len(p.Steps) + len(p.SyncFail) }

// checkSteps refuses, before anything is written, a plan with more waves
// than maxSteps (0: no cap): one render must not hold a shared worker for
// maxSteps × the wave timeout.
func checkSteps(p *lifecycle.Plan, maxSteps int) error {
	if n := planSteps(p); maxSteps > 0 && n > maxSteps {
		return fmt.Errorf("%w: the render has %d waves (each phase's sync waves, SyncFail hooks included), more than the %d a sync may run (the controller's --max-waves), nothing was applied; merge waves, or ask the cluster admin to raise --max-waves",
			ErrRefused, n, maxSteps)
	}
	return nil
}

// runSyncFail runs the SyncFail hooks of a failed step, unless ctx has
// ended: a sync stopped by its deadline (the controller's --sync-timeout)
// or cancelled starts nothing more.
func (e *Engine) runSyncFail(ctx context.Context, steps []lifecycle.Step, opts ApplyOptions, res *Result) []HookRun {
	if ctx.Err() != nil {
		return nil
	}
	return e.runHookSteps(ctx, steps, opts, res)
}

// inventorySaveTimeout bounds saving the inventory of a sync whose context
// has ended.
const inventorySaveTimeout = 30 * time.Second

// saveInventory saves inv even when ctx has ended (a sync stopped by its
// deadline, a Ctrl-C): what the sync applied so far is recorded, so a
// later sync prunes it rather than leave it behind unowned.
func saveInventory(ctx context.Context, store InventoryStore, inv *Inventory) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), inventorySaveTimeout)
	defer cancel()
	return store.Save(ctx, inv)
}
