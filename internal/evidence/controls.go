package evidence

import "github.com/keyless-cd/keyless/internal/ledger"

// Control is a regulation's change-management control and what in the
// pack is evidence for it.
type Control struct {
	ID          string `json:"id"`
	Regulation  string `json:"regulation"`
	Requirement string `json:"requirement"`
	// Evidence says which fields of each change, and which part of the
	// pack, show the control held.
	Evidence string `json:"evidence"`
}

// Control IDs.
const (
	ControlDORA  = "DORA-9(4)(e)"
	ControlSOC2  = "SOC2-CC8.1"
	ControlISO   = "ISO27001-A.8.32"
	ControlHSLF  = "HSLF-FS-2016:40-4:9"
	ControlFours = "four-eyes"
)

// Controls are the controls a pack maps its changes to.
var Controls = []Control{
	{ID: ControlDORA, Regulation: "DORA (EU 2022/2554) Art. 9(4)(e)",
		Requirement: "ICT changes are recorded, tested, assessed, approved, implemented and verified in a controlled manner",
		Evidence:    "each change: revision, author and renderedDigest (recorded), dryRun, the server-side dry run before the write, and result (tested, implemented), approvers and approvedBy (approved), its objects' UIDs and resourceVersions and the apiserver writes it made (verified, with --apiserver-audit-log); the ledger's chain and signatures (recorded, not altered)"},
	{ID: ControlSOC2, Regulation: "SOC 2 (TSC 2017) CC8.1",
		Requirement: "changes to infrastructure and software are authorized, designed, documented, tested, approved and implemented",
		Evidence:    "writtenBy, signedBy and approvedBy (authorized, approved), objects and result (documented, implemented), windowOverride (changes outside agreed windows, by a named person with a reason)"},
	{ID: ControlISO, Regulation: "ISO/IEC 27001:2022 Annex A 8.32",
		Requirement: "changes to information processing facilities and systems are subject to change management procedures",
		Evidence:    "every applied revision is a ledger record tied to its commit, its deployer identity and its objects; audit.writesWithoutRecord lists what changed outside the procedure"},
	{ID: ControlHSLF, Regulation: "HSLF-FS 2016:40, 4 kap. 9 §",
		Requirement: "logs show who did what, are kept and checked regularly",
		Evidence:    "who wrote (writtenBy), signed, approved and applied (appliedAs) each change; the pack's ledger section (records verified, last hash) is the regular check, the ledger file the kept log"},
	{ID: ControlFours, Regulation: "four-eyes principle (DORA, SOC 2 CC8.1, ISO 27001 A.5.3)",
		Requirement: "a change is approved by a person other than its author",
		Evidence:    "approvers: people other than the change's authors and merger approved its final head at the forge (spec.source.verify.approvals, checked before the apply); approvedBy differs from writtenBy (out-of-namespace objects approved with keyless approve)"},
}

// controlsOf are the controls change c is evidence for.
func controlsOf(c Change) []string {
	switch c.Kind {
	case ledger.KindOverride, ledger.KindPause:
		// An emergency change's who, why and how long.
		return []string{ControlDORA, ControlSOC2, ControlHSLF}
	case ledger.KindApproval:
		return []string{ControlDORA, ControlSOC2, ControlFours}
	}
	ids := []string{ControlDORA, ControlSOC2, ControlISO, ControlHSLF}
	if (c.ApprovedBy != "" && c.ApprovedBy != c.WrittenBy) || len(c.Approvers) > 0 {
		ids = append(ids, ControlFours)
	}
	return ids
}
