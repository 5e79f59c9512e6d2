//! What a line of the audit log says happened: every action the desk,
//! its operators and the command line write into a request's history (or
//! the desk's), named once here. The console shows each by its label
//! (`templates/web/labels.toml`), and a test checks every one has a label.

/// Defines the actions with their stored names, once.
macro_rules! actions {
    ($($(#[$doc:meta])* $name:ident => $text:literal,)*) => {
        /// An action of the audit log.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action {
            $($(#[$doc])* $name,)*
        }

        impl Action {
            /// Every action, in the order of the labels table.
            pub const ALL: &'static [Action] = &[$(Action::$name,)*];

            /// The name stored in the audit log and shown in its CSV.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Action::$name => $text,)*
                }
            }

            /// The action a stored name stands for, if it is one.
            pub fn parse(s: &str) -> Option<Action> {
                match s {
                    $($text => Some(Action::$name),)*
                    _ => None,
                }
            }
        }
    };
}

actions! {
    /// tạo yêu cầu
    Created => "created",
    /// tạo yêu cầu (thư về một yêu cầu khác)
    CreatedLinked => "created_linked",
    /// nhận thư trả lời bổ sung
    FollowupReply => "followup_reply",
    /// nhận thư bổ sung (mã bí mật của chuỗi thư)
    FollowupToken => "followup_token",
    /// nhận thư mới cùng số CCCD/CMND
    FollowupSameNumber => "followup_same_number",
    /// đóng yêu cầu vì công dân không bổ sung
    ClosedSilent => "closed_silent",
    /// nhận thư sau khi đã quyết định
    MessageAfterDecision => "message_after_decision",
    /// giữ thư để đọc, không dùng để xét
    FlaggedMessage => "flagged_message",
    /// không gửi thư trả lời
    ReplyNotSent => "reply_not_sent",
    /// duyệt
    Approve => "approve",
    /// duyệt lần 1
    ApproveFirst => "approve_first",
    /// từ chối
    Reject => "reject",
    /// đề nghị bổ sung
    Ask => "ask",
    /// ghi chú
    Note => "note",
    /// xác nhận (giám sát viên) cho duyệt tài khoản
    HolderRiskConfirmed => "holder_risk_confirmed",
    /// nhận thay yêu cầu
    ClaimTakenOver => "claim_taken_over",
    /// ghi nhận chủ tài khoản không đồng ý hủy (tổng đài)
    HotlineObjected => "hotline_objected",
    /// ghi nhận chủ tài khoản đồng ý xóa ngay (tổng đài)
    HotlineConfirmed => "hotline_confirmed",
    /// kết thúc thời hạn chờ
    WindowOver => "window_over",
    /// gửi SMS (cổng SMS đã nhận)
    SmsAccepted => "sms_accepted",
    /// gửi SMS thất bại
    SmsFailed => "sms_failed",
    /// không gửi được SMS
    SmsNotSent => "sms_not_sent",
    /// SMS không tới được máy
    SmsUndelivered => "sms_undelivered",
    /// SMS đã tới máy người nhận
    SmsDelivered => "sms_delivered",
    /// SMS đang chờ ở tổng đài (máy chưa nhận)
    SmsBuffered => "sms_buffered",
    /// SMS đã tới tổng đài tin nhắn
    SmsAtSmsc => "sms_at_smsc",
    /// trả yêu cầu về cán bộ
    BackToOperator => "back_to_operator",
    /// khóa tài khoản
    AccountLocked => "account_locked",
    /// mở khóa tài khoản
    AccountUnlocked => "account_unlocked",
    /// xóa tài khoản
    AccountDeleted => "account_deleted",
    /// bỏ qua lệnh khóa tài khoản
    LockSkipped => "lock_skipped",
    /// xóa dữ liệu hết thời hạn lưu trữ
    Purged => "purged",
    /// xem ảnh
    ViewedPhoto => "viewed_photo",
    /// xem thư từ
    ViewedThread => "viewed_thread",
    /// thêm cán bộ
    OperatorAdd => "operator_add",
    /// đặt lại mật khẩu cán bộ
    OperatorReset => "operator_reset",
    /// khóa cán bộ
    OperatorDisable => "operator_disable",
    /// mở khóa cán bộ
    OperatorEnable => "operator_enable",
    /// đổi vai trò cán bộ
    OperatorRole => "operator_role",
    /// tạo khóa API
    TokenCreate => "token_create",
    /// thu hồi khóa API
    TokenRevoke => "token_revoke",
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_reads_back_as_its_action() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(*a));
        }
        assert_eq!(Action::parse("not_an_action"), None);
    }
}
